#!/usr/bin/env bash
# REGISTER over TLS beside TCP, in one run: connections kept open, and a new connection per registration (a TLS
# handshake each). Our own generator (`reg-load`, crates/testkit) drives both, with the same client code:
# Debian's SIPp is built without TLS.
#
#   bench/tls.sh [DEVICES]        default 2000 devices; SECS (10) per run, WORKERS (8) clients at once
#
# Closed loop: each worker registers one device after another (REGISTER, 401, REGISTER with SHA-256 digest,
# 200), so a run measures what the daemon sustains, and its CPU per registration (from /proc). Each run is then
# repeated with 1.5x the workers (more demand than it sustains): the rate should hold, with latency growing,
# and nothing fail. Shipped settings (tls.max_handshakes 256, handshake timeout 5 s, SHA-256 digest first);
# only keepalives are off (interval 3600 s), as in bench/register.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. "$ROOT/bench/common.sh"
DEVICES="${1:-2000}"
SECS="${SECS:-10}"
WORKERS="${WORKERS:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
command -v openssl >/dev/null || { echo "openssl is required (apt-get install openssl)" >&2; exit 1; }

cargo build --release --quiet -p switchboard -p switchboard-testkit --bin switchboard --bin reg-load
BIN="$CARGO_TARGET_DIR/release/switchboard"
LOAD="$CARGO_TARGET_DIR/release/reg-load"
WORK="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=15060; TLS_PORT=15061

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -keyout "$WORK/sip.key" \
  -out "$WORK/sip.crt" -subj /CN=sip.bench -addext subjectAltName=DNS:sip.bench,IP:127.0.0.1 \
  -addext basicConstraints=critical,CA:FALSE -addext extendedKeyUsage=serverAuth 2>/dev/null
{
  echo name,auth_id,password
  for i in $(seq -w 1 "$DEVICES"); do echo "bench $i,t$i,pw-t$i-bench"; done
} > "$WORK/devices.csv"
cat > "$WORK/switchboard.toml" <<TOML
[api]
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:$PORT"
[tls]
listen = "127.0.0.1:$TLS_PORT"
cert = "$WORK/sip.crt"
key = "$WORK/sip.key"
[keepalive]
interval_secs = 3600
[database]
url = "sqlite://$WORK/bench.db"
[log]
level = "warn"
TOML
export SWITCHBOARD_CONFIG="$WORK/switchboard.toml"
"$BIN" customer add Bench >/dev/null
"$BIN" service add --customer Bench --name bench --mode direct >/dev/null
"$BIN" device import --service bench "$WORK/devices.csv" >/dev/null
"$BIN" run 2>"$WORK/daemon.log" &
PID=$!
sleep 2

run() { # transport reuse(yes|no) workers
  local port=$PORT extra=()
  [ "$1" = tls ] && port=$TLS_PORT && extra=(--ca "$WORK/sip.crt" --name sip.bench)
  [ "$2" = yes ] && extra+=(--reuse)
  "$LOAD" --transport "$1" --connect "127.0.0.1:$port" --users "$WORK/devices.csv" --workers "$3" --secs "$SECS" \
    --pid "$PID" "${extra[@]}"
  sleep 2
}

echo "== $DEVICES devices, $SECS s per run, $WORKERS workers (then $((WORKERS * 3 / 2)))"
printf '%-5s %-11s %7s %9s %7s %9s %9s %14s\n' transport connection workers rate failed p50_us p99_us cpu_us_per_reg
for reuse in yes no; do
  for workers in "$WORKERS" $((WORKERS * 3 / 2)); do
    for transport in tcp tls; do
      run "$transport" "$reuse" "$workers" | python3 -c "
import json, sys
r = json.load(sys.stdin)
conn = 'kept open' if r['reuse'] else 'new each'
print(f\"{r['transport']:<5} {conn:<11} {r['workers']:>7} {r['rate']:>9.0f} {r['failed']:>7} {r['p50_us']:>9} {r['p99_us']:>9} {r['daemon_cpu_us_per_registration']:>14.0f}\")"
    done
  done
done
echo "daemon RSS after the runs: $(( $(rss_kb $PID) / 1024 )) MiB"
echo "daemon log, warnings and errors:"; grep -iE "warn|error|panic" "$WORK/daemon.log" | head -5 || true
kill -TERM $PID; wait $PID || true

#!/usr/bin/env bash
# Registration benchmark: REGISTER -> 401 -> REGISTER with MD5 digest -> 200, driven by SIPp over UDP.
#
#   bench/register.sh [DEVICES] [RATES...]      defaults: 10000 devices; rates 2000 5000 8000 10000 12000 15000 20000
#
# 1. Baseline: SIPp against a trivial SIPp registrar (bench/uas_register.xml) at each rate: the load generator's
#    own ceiling on this machine, so the daemon's figures can be read as ratios.
# 2. Provisions DEVICES devices (CSV import), starts the release daemon, registers every device once at 1,000/s,
#    and reads the daemon's RSS before and after (memory per binding).
# 3. Offers each rate for SECONDS seconds and reports completions, failures and daemon CPU; a rate is "held" when
#    failures are < 0.1 % and completed calls reach >= 97 % of what was offered.
# BENCH_DATABASE_URL=postgres://... runs the daemon on PostgreSQL (an empty database) instead of SQLite.
# BENCH_SKIP_BASELINE=1 skips step 1.
# Loopback only; every SIPp run is bounded by -m and a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. "$ROOT/bench/common.sh"
DEVICES="${1:-10000}"; shift || true
RATES=("$@"); [ ${#RATES[@]} -gt 0 ] || RATES=(2000 5000 8000 10000 12000 15000 20000)
SECONDS_PER_RATE="${SECONDS_PER_RATE:-10}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
command -v sipp >/dev/null || { echo "sipp is required (apt-get install sip-tester)" >&2; exit 1; }

cargo build --release --quiet -p switchboard
BIN="$CARGO_TARGET_DIR/release/switchboard"
WORK="$(mktemp -d)"; trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=15060; UAS_PORT=15070

# SIPp reads its [authentication] keyword from the CSV whole (fields inside it are not expanded).
{
  echo SEQUENTIAL
  for i in $(seq -w 1 "$DEVICES"); do echo "b$i;pw-b$i-bench;[authentication username=b$i password=pw-b$i-bench];3600"; done
} > "$WORK/users.csv"
{
  echo name,auth_id,password
  for i in $(seq -w 1 "$DEVICES"); do echo "bench $i,b$i,pw-b$i-bench"; done
} > "$WORK/devices.csv"

# Runs the SIPp client at a rate; prints "offered completed failed seconds".
drive() { # rate target_port calls
  local rate=$1 port=$2 calls=$3
  rm -f "$WORK"/stat.csv
  ( cd "$WORK" && timeout $((SECONDS_PER_RATE * 4 + 30)) sipp -sf "$ROOT/tests/sipp/register_auth.xml" -inf users.csv \
      -i 127.0.0.1 -p 0 -r "$rate" -rp 1000 -m "$calls" -l $((rate * 2)) -timeout $((SECONDS_PER_RATE * 3 + 20))s \
      -nostdin -trace_stat -stf stat.csv -fd 1 127.0.0.1:"$port" >/dev/null 2>&1 || true )
  sipp_stats "$WORK/stat.csv" "$calls" "$rate" 0
}



if [ -z "${BENCH_SKIP_BASELINE:-}" ]; then
echo "== baseline: SIPp against a trivial SIPp registrar"
(cd "$WORK" && sipp -sf "$ROOT/bench/uas_register.xml" -i 127.0.0.1 -p $UAS_PORT -nostdin -bg >/dev/null 2>&1 || true)
sleep 1
for rate in "${RATES[@]}"; do
  read -r offered ok failed secs done < <(drive "$rate" $UAS_PORT $((rate * SECONDS_PER_RATE)))
  report baseline "$rate" "$offered" "$ok" "$failed" "$secs" "$done"
done
pkill -f "uas_register.xml" || true
fi

echo "== switchboard with $DEVICES devices"
cat > "$WORK/switchboard.toml" <<TOML
[sip]
listen = "127.0.0.1:$PORT"
[auth]
algorithms = ["MD5", "SHA-256"]
max_failures = 1000000
[keepalive]
interval_secs = 3600
[database]
url = "${BENCH_DATABASE_URL:-sqlite://$WORK/bench.db}"
[log]
level = "warn"
TOML
export SWITCHBOARD_CONFIG="$WORK/switchboard.toml"
"$BIN" customer add Bench >/dev/null
"$BIN" service add --customer Bench --name bench --mode direct >/dev/null
"$BIN" device import --service bench "$WORK/devices.csv"
"$BIN" run 2>"$WORK/daemon.log" &
PID=$!
sleep 2
RSS0=$(rss_kb $PID)
read -r offered ok failed secs done < <(drive 1000 $PORT "$DEVICES")
echo "bind-all: $ok of $DEVICES devices registered, $failed failed"
sleep 2
RSS1=$(rss_kb $PID)
echo "== memory"
echo "RSS with $DEVICES devices provisioned, no bindings: $((RSS0 / 1024)) MiB"
echo "RSS with $DEVICES bindings:                          $((RSS1 / 1024)) MiB ($(( (RSS1 - RSS0) * 1024 / DEVICES )) bytes per binding)"
echo "== rates"
for rate in "${RATES[@]}"; do
  c0=$(cpu_ticks $PID)
  read -r offered ok failed secs done < <(drive "$rate" $PORT $((rate * SECONDS_PER_RATE)))
  c1=$(cpu_ticks $PID)
  cpu=$(python3 -c "print(f'daemon cpu {($c1-$c0)/100/$SECONDS_PER_RATE*100:.0f}% of one core, {($c1-$c0)*10000/max($ok,1):.0f} us per registration')")
  report switchboard "$rate" "$offered" "$ok" "$failed" "$secs" "$done" "$cpu"
done
echo "RSS after the rate runs:                             $(( $(rss_kb $PID) / 1024 )) MiB"
"$BIN" registrations --json | python3 -c "import json,sys; print('bindings stored:', len(json.load(sys.stdin)))"
kill -TERM $PID; wait $PID || true

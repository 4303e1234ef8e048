#!/usr/bin/env bash
# Media relay benchmark: CALLS anchored G.711 calls at once, a 172-byte RTP packet every 20 ms each way, through
# the daemon's relay, for SECS seconds at each count.
#
#   bench/media.sh [CALLS...]        default: 100 250 500 1000 1500
#
# The generator is `rtp-load` (crates/testkit): a carrier on 127.0.0.2 calls one number, the number's device
# (registered from 127.0.0.1) answers every call, and both ends then send to the relay ports the daemon gave
# them. Every packet carries its send time, so the generator reports loss and one-way latency (p50, p99,
# p99.9), its own CPU, and the daemon's CPU over the same seconds.
#
# Baseline: the same generator with each call's two ends sending straight to each other (no switch), at each
# count, in the same run; the relay's added latency is the difference.
# SOCKETS (default 4) is how many sockets each side of the generator spreads its calls over.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. "$ROOT/bench/common.sh"
RUNS=("$@"); [ ${#RUNS[@]} -gt 0 ] || RUNS=(100 250 500 1000 1500)
SECS="${SECS:-10}"
SOCKETS="${SOCKETS:-4}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"

cargo build --release --quiet -p switchboard -p switchboard-testkit --bin switchboard --bin rtp-load
BIN="$CARGO_TARGET_DIR/release/switchboard"
LOAD="$CARGO_TARGET_DIR/release/rtp-load"
WORK="$(mktemp -d)"
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=16260
NUMBER="+61290000001"

line() { # label json
  python3 - "$1" "$2" <<'PY'
import json, sys
label, r = sys.argv[1], json.loads(sys.argv[2])
daemon = ''
if r.get('daemon_cpu_pct') is not None:
    daemon = f"  daemon {r['daemon_cpu_pct']:.0f}% of a core, {r['daemon_us_per_packet']:.2f} us/packet"
print(f"{label:11} {r['calls']:5} calls: {2 * r['packets_per_sec_each_way']:8.0f} packets/s delivered"
      f"  lost {r['lost']} of {r['sent']} ({r['loss_pct']:.3f}%; {r['lost_at_stream_start']} at stream starts), {r['silent_streams']} silent streams {r['silent_stream_ids'] or ''}"
      f"  latency p50 {r['p50_us']} us p99 {r['p99_us']} us p99.9 {r['p999_us']} us"
      f"  generator {r['generator_cpu_pct']:.0f}%{daemon}"
      + (f"  set up in {r['setup_ms']} ms, hung up {r['hung_up']}" if r['mode'] == 'switch' else ''))
PY
}

echo "== baseline: the generator straight to itself (no switch), $SECS s per count"
for n in "${RUNS[@]}"; do
  line baseline "$("$LOAD" direct --calls "$n" --secs "$SECS" --sockets "$SOCKETS")"
done

echo "== switchboard: every call anchored through the relay"
cat > "$WORK/switchboard.toml" <<TOML
[api]
# the API runs as shipped, on any free port (not 8080, which may be taken)
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:$PORT"
[keepalive]
# The generator's phone reads no SIP while it streams; it would miss keepalives and go offline.
interval_secs = 3600
[calls]
check_interval_secs = 0
# Lifted: one number of one service with one device takes every call here. Shipped: 30 inbound calls per
# service and 8 per device; the 31st caller gets 486.
max_inbound_per_service = 100000
max_per_device = 100000
[media]
# Shipped settings otherwise: ports 10000-20000 (2,500 calls), 60 s media timeout, probation 4.
[database]
url = "sqlite://$WORK/bench.db"
[log]
level = "warn"
TOML
export SWITCHBOARD_CONFIG="$WORK/switchboard.toml"
"$BIN" customer add Bench >/dev/null
"$BIN" service add --customer Bench --name bench --mode direct >/dev/null
"$BIN" device add --service bench --name answering --auth-id answer1 --password pw-answer1-bench >/dev/null
"$BIN" number add --service bench --number "$NUMBER" --device answering --divert-when never >/dev/null
"$BIN" gateway add --name carrier --address 127.0.0.2:5060 >/dev/null
"$BIN" run 2>"$WORK/daemon.log" &
PID=$!
sleep 2
FDS0=$(ls /proc/$PID/fd | wc -l)
for n in "${RUNS[@]}"; do
  line switchboard "$("$LOAD" switch --calls "$n" --secs "$SECS" --sockets "$SOCKETS" --sip 127.0.0.1:$PORT \
    --number "$NUMBER" --user answer1 --password pw-answer1-bench --pid $PID)"
  sleep 2
done
echo "daemon: $(( $(rss_kb $PID) / 1024 )) MiB resident; open descriptors $FDS0 before the runs, $(ls /proc/$PID/fd | wc -l) after"
kill -TERM $PID; wait $PID || true
grep -E "ERROR|WARN" "$WORK/daemon.log" | sort | uniq -c | sort -rn | head -5 || true

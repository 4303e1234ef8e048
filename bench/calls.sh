#!/usr/bin/env bash
# Call-rate benchmark: a carrier gateway (SIPp UAC on 127.0.0.2) calls a customer's number; the daemon routes it
# to the number's device (a SIPp UAS) which answers at once; the caller holds 1 s and hangs up. Over UDP.
#
#   bench/calls.sh [DEVICES] [RATES...]      defaults: 10000 registered devices; rates 200 500 1000 1500 2000 2500
#
# 1. Baseline: the same SIPp caller straight against the SIPp callee at each rate: the load generator's own
#    ceiling on this machine (two SIPp processes, no switch), so the daemon's figures read as ratios.
# 2. Provisions DEVICES devices and registers every one of them (so call setup runs with that many bindings),
#    plus the answering device, registered from the port its SIPp UAS then listens on.
# 3. Offers each rate for SECONDS_PER_RATE seconds and reports completions, failures and daemon CPU; a rate is
#    "held" when failures are < 0.1 % and completions keep up with >= 97 % of the offered rate.
# BENCH_SKIP_BASELINE=1 skips step 1. BENCH_DATABASE_URL=postgres://... runs the daemon on PostgreSQL.
# BENCH_MEDIA_ANCHOR=never turns media anchoring off (signalling alone).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. "$ROOT/bench/common.sh"
DEVICES="${1:-10000}"; shift || true
RATES=("$@"); [ ${#RATES[@]} -gt 0 ] || RATES=(200 500 1000 1500 2000 2500)
SECONDS_PER_RATE="${SECONDS_PER_RATE:-10}"
HOLD_MS="${HOLD_MS:-1000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
command -v sipp >/dev/null || { echo "sipp is required (apt-get install sip-tester)" >&2; exit 1; }

cargo build --release --quiet -p switchboard
BIN="$CARGO_TARGET_DIR/release/switchboard"
WORK="$(mktemp -d)"
CALLEES=()
cleanup() {
  for p in "${CALLEES[@]}" $(jobs -p); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=16060; UAS_PORT=16070; DEV_PORT=16080; GW_PORT=16090
NUMBER="+61290000001"

# Runs the SIPp caller at a rate against a target; prints "offered completed failed seconds done_in_window".
drive() { # rate target
  local rate=$1 target=$2 calls=$(( $1 * SECONDS_PER_RATE ))
  rm -f "$WORK"/stat.csv
  ( cd "$WORK" && timeout $((SECONDS_PER_RATE * 4 + 60)) sipp -sf "$ROOT/tests/sipp/uac_call.xml" -s "$NUMBER" \
      -key caller +61400000001 -i 127.0.0.2 -p $GW_PORT -r "$rate" -rp 1000 -m "$calls" -l $((rate * 4 + 100)) \
      -d "$HOLD_MS" -timeout $((SECONDS_PER_RATE * 3 + 40))s -max_socket 65000 \
      -nostdin -trace_stat -stf stat.csv -fd 1 "$target" >/dev/null 2>&1 || true )
  sipp_stats "$WORK/stat.csv" "$calls" "$rate" "$HOLD_MS"
}



# The answering device: a SIPp UAS that answers every INVITE at once (ring pause 0) and takes the caller's BYE.
start_callee() { # port
  (cd "$WORK" && exec sipp -sf "$ROOT/tests/sipp/uas_answer.xml" -i 127.0.0.1 -p "$1" -aa -d 0 -nostdin \
     -max_socket 65000 >/dev/null 2>&1) &
  CALLEES+=($!)
  sleep 1
}

if [ -z "${BENCH_SKIP_BASELINE:-}" ]; then
  echo "== baseline: SIPp caller straight to the SIPp callee (no switch)"
  start_callee $UAS_PORT
  for rate in "${RATES[@]}"; do
    read -r offered ok failed secs done < <(drive "$rate" 127.0.0.1:$UAS_PORT)
    report baseline "$rate" "$offered" "$ok" "$failed" "$secs" "$done"
  done
  for p in "${CALLEES[@]}"; do kill "$p" 2>/dev/null || true; done
  CALLEES=()
  sleep 1
fi

echo "== switchboard with $DEVICES registered devices"
cat > "$WORK/switchboard.toml" <<TOML
[api]
# the API runs as shipped, on any free port (not 8080, which may be taken)
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:$PORT"
[auth]
algorithms = ["MD5", "SHA-256"]
[keepalive]
interval_secs = 3600
[calls]
check_interval_secs = 0
# Lifted: one number of one service takes every call here, so the shipped 30 inbound channels per service (and
# 5,000 calls per node) would cap the load. Shipped, calls past 30 at once get 486: about 30 calls/s at a 1 s hold.
max_inbound_per_service = 1000000
max_calls = 1000000
[media]
# Media is anchored as shipped (each call binds and closes four relay sockets; SIPp sends no RTP here);
# BENCH_MEDIA_ANCHOR=never measures signalling alone. The port range is widened: the shipped 10000-20000 holds
# 2,500 calls at once, fewer than 3,000 calls/s at a 1 s hold. It stays below the kernel's ephemeral ports
# (32768 up), where SIPp's own sockets would take relay ports.
anchor = "${BENCH_MEDIA_ANCHOR:-always}"
port_min = 10000
port_max = 32000
[database]
url = "${BENCH_DATABASE_URL:-sqlite://$WORK/bench.db}"
[log]
level = "warn"
TOML
export SWITCHBOARD_CONFIG="$WORK/switchboard.toml"
{
  echo SEQUENTIAL
  for i in $(seq -w 1 "$DEVICES"); do echo "b$i;pw-b$i-bench;[authentication username=b$i password=pw-b$i-bench];3600"; done
} > "$WORK/users.csv"
{
  echo name,auth_id,password
  for i in $(seq -w 1 "$DEVICES"); do echo "bench $i,b$i,pw-b$i-bench"; done
  echo "answering,answer1,pw-answer1-bench"
} > "$WORK/devices.csv"
printf 'SEQUENTIAL\nanswer1;pw-answer1-bench;[authentication username=answer1 password=pw-answer1-bench];3600\n' \
  > "$WORK/answer.csv"
"$BIN" customer add Bench >/dev/null
"$BIN" service add --customer Bench --name bench --mode direct >/dev/null
"$BIN" device import --service bench "$WORK/devices.csv" >/dev/null
"$BIN" number add --service bench --number "$NUMBER" --device answering --divert-when never >/dev/null
"$BIN" gateway add --name carrier --address 127.0.0.2:5060 >/dev/null
"$BIN" run 2>"$WORK/daemon.log" &
PID=$!
sleep 2
RSS0=$(rss_kb $PID)
register() { # csv port count
  (cd "$WORK" && timeout 120 sipp -sf "$ROOT/tests/sipp/register_auth.xml" -inf "$1" -i 127.0.0.1 -p "$2" -r 1000 \
     -m "$3" -nostdin -timeout 100s 127.0.0.1:$PORT >/dev/null 2>&1 || true)
}
register users.csv 0 "$DEVICES"
register answer.csv $DEV_PORT 1
start_callee $DEV_PORT
sleep 2
BOUND=$("$BIN" registrations --json | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
RSS1=$(rss_kb $PID)
echo "bindings: $BOUND (RSS $((RSS0 / 1024)) MiB before registering, $((RSS1 / 1024)) MiB after)"
echo "== rates (hold ${HOLD_MS} ms)"
for rate in "${RATES[@]}"; do
  c0=$(cpu_ticks $PID)
  read -r offered ok failed secs done < <(drive "$rate" 127.0.0.1:$PORT)
  c1=$(cpu_ticks $PID)
  cpu=$(python3 -c "print(f'daemon cpu {($c1-$c0)/100/$SECONDS_PER_RATE*100:.0f}% of one core, {($c1-$c0)*10000/max($ok,1):.0f} us per call')")
  report switchboard "$rate" "$offered" "$ok" "$failed" "$secs" "$done" "$cpu"
  sleep 3
done
echo "RSS after the rate runs: $(( $(rss_kb $PID) / 1024 )) MiB"
"$BIN" cdr --json --limit 10000 | python3 -c "import json,sys; r=json.load(sys.stdin); print('CDRs readable (last 10000):', len(r), 'answered:', sum(1 for c in r if c['disposition']=='answered'))"
kill -TERM $PID; wait $PID || true
grep -E "ERROR|WARN" "$WORK/daemon.log" | sort | uniq -c | sort -rn | head -5 || true

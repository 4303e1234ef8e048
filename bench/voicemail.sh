#!/usr/bin/env bash
# Voicemail deposit benchmark: CALLS carrier calls (SIPp UAC on 127.0.0.2) to one number that diverts every call
# to the built-in voicemail, all up at once: each hears the greeting (GREET_MS), then plays SIPp's own G.711
# A-law recording (4.7 s of audio in 236 packets) and hangs up. Media is anchored as shipped, so every packet
# crosses the relay to the voicemail and back.
#
#   bench/voicemail.sh [CALLS...]        default: 50 200 300
#
# Baseline: the same SIPp caller against a SIPp UAS that answers and takes the audio (no switch): the generator's
# own ceiling. Reported per run: calls completed, messages stored, their lengths (every caller sends the same
# audio at the same moment after the answer, so lost audio shows as a spread, a short minimum), daemon CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
. "$ROOT/bench/common.sh"
RUNS=("$@"); [ ${#RUNS[@]} -gt 0 ] || RUNS=(50 200 300)
GREET_MS="${GREET_MS:-12000}"
AUDIO=/usr/share/sip-tester/g711a.pcap
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
command -v sipp >/dev/null || { echo "sipp is required (apt-get install sip-tester)" >&2; exit 1; }
[ -f "$AUDIO" ] || { echo "$AUDIO is missing (it ships with sip-tester)" >&2; exit 1; }

cargo build --release --quiet -p switchboard
BIN="$CARGO_TARGET_DIR/release/switchboard"
WORK="$(mktemp -d)"
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT=16160; UAS_PORT=16170; GW_PORT=16190
NUMBER="+61290000001"

drive() { # calls target -> "offered completed failed"
  local n=$1
  rm -f "$WORK"/stat.csv
  ( cd "$WORK" && timeout 120 sipp -sf "$ROOT/tests/sipp/uac_voicemail.xml" -s "$NUMBER" \
      -key caller +61400000001 -d "$GREET_MS" \
      -i 127.0.0.2 -p $GW_PORT -mi 127.0.0.2 -r "$n" -rp 1000 -m "$n" -l "$n" -timeout 100s -max_socket 65000 \
      -nostdin -trace_stat -stf stat.csv -fd 1 "$2" >/dev/null 2>&1 || true )
  python3 - "$WORK/stat.csv" "$n" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, last = rows[0], rows[-1]
print(sys.argv[2], last[h.index('SuccessfulCall(C)')], last[h.index('FailedCall(C)')])
PY
}

echo "== baseline: SIPp caller straight to a SIPp UAS (no switch)"
(cd "$WORK" && exec sipp -sf "$ROOT/tests/sipp/uas_answer.xml" -i 127.0.0.1 -p $UAS_PORT -mi 127.0.0.1 -d 0 \
   -nostdin -max_socket 65000 >/dev/null 2>&1) &
sleep 1
for n in "${RUNS[@]}"; do
  read -r offered ok failed < <(drive "$n" 127.0.0.1:$UAS_PORT)
  echo "baseline     $n calls at once: completed $ok, failed $failed"
done
kill %1 2>/dev/null || true
sleep 1

echo "== switchboard: voicemail answers every call"
cat > "$WORK/switchboard.toml" <<TOML
[api]
# the API runs as shipped, on any free port (not 8080, which may be taken)
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:$PORT"
[calls]
check_interval_secs = 0
# Lifted: one number takes every call here; the shipped 30 inbound channels per service would cap the run at 30
# messages at once (the rest get 486 Busy Here).
max_inbound_per_service = 100000
[voicemail]
dir = "$WORK/voicemail"
[database]
url = "${BENCH_DATABASE_URL:-sqlite://$WORK/bench.db}"
[log]
level = "warn"
TOML
export SWITCHBOARD_CONFIG="$WORK/switchboard.toml"
"$BIN" customer add Bench >/dev/null
"$BIN" service add --customer Bench --name bench --mode direct >/dev/null
"$BIN" number add --service bench --number "$NUMBER" --divert-when all --divert-to voicemail >/dev/null
"$BIN" gateway add --name carrier --address 127.0.0.2:$GW_PORT >/dev/null
"$BIN" run 2>"$WORK/daemon.log" &
PID=$!
sleep 2
before=0
for n in "${RUNS[@]}"; do
  c0=$(cpu_ticks $PID); t0=$(date +%s.%N)
  read -r offered ok failed < <(drive "$n" 127.0.0.1:$PORT)
  c1=$(cpu_ticks $PID); t1=$(date +%s.%N)
  sleep 2
  "$BIN" voicemail list --number "$NUMBER" --json > "$WORK/messages.json"
  python3 - "$WORK/messages.json" "$before" "$n" "$ok" "$failed" "$c0" "$c1" "$t0" "$t1" <<'PY'
import json, sys
msgs = json.load(open(sys.argv[1]))
before, n, ok, failed = (int(x) for x in sys.argv[2:6])
c0, c1, t0, t1 = int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9])
new = msgs[before:]
kept = [m for m in new if m['status'] == 'new']
d = sorted(m['duration_ms'] for m in kept) or [0]
cpu = (c1 - c0) / 100 / (t1 - t0) * 100
print(f"switchboard  {n} calls at once: completed {ok}, failed {failed}; messages stored {len(kept)} of {n}"
      f" ({len(new) - len(kept)} not finished); lengths min {d[0]} / median {d[len(d) // 2]} / max {d[-1]} ms"
      f"; daemon cpu {cpu:.0f}% of one core over the run")
PY
  before=$(python3 -c "import json; print(len(json.load(open('$WORK/messages.json'))))")
  sleep 2
done
echo "daemon log lines with 'error': $(grep -c -i error "$WORK/daemon.log" || true)"

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
#    failures are < 0.1 % and completed calls reach >= 97 % of what was offered. Every password is right, so any
#    401 or 403 to an authenticated REGISTER is a refusal of valid credentials: those are counted (must be 0).
# 4. Overload: 1.5x the highest rate held, then recovery: a registration every 50 ms right after the overload
#    stops, reporting how long until they are answered 200 again (and how many 503s the daemon shed meanwhile).
# The daemon runs the shipped security settings (auth.max_failures and the rest at their defaults); only the
# digest algorithm order is MD5 first, because SIPp 3.6 reads the first challenge alone and knows only MD5.
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
  rm -f "$WORK"/stat.csv "$WORK"/errors.log
  ( cd "$WORK" && timeout $((SECONDS_PER_RATE * 4 + 30)) sipp -sf "$ROOT/tests/sipp/register_auth.xml" -inf users.csv \
      -i 127.0.0.1 -p 0 -r "$rate" -rp 1000 -m "$calls" -l $((rate * 2)) -timeout $((SECONDS_PER_RATE * 3 + 20))s \
      -nostdin -trace_stat -stf stat.csv -trace_err -error_file errors.log -fd 1 127.0.0.1:"$port" >/dev/null 2>&1 || true )
  sipp_stats "$WORK/stat.csv" "$calls" "$rate" 0
}

# Authenticated REGISTERs (CSeq 2) that were answered 401 or 403 in the last run: valid credentials refused.
refused() {
  grep -A8 "while expecting '200'" "$WORK/errors.log" 2>/dev/null | grep -B5 "^CSeq: 2 REGISTER" \
    | grep -c "received 'SIP/2.0 40[13]" || true
}
# Answers of each status in the last run's unexpected messages ("503 x12" ...).
unexpected() {
  grep -o "received 'SIP/2.0 [0-9]*" "$WORK/errors.log" 2>/dev/null | awk '{print $2}' | sort | uniq -c \
    | awk '{printf "%s x%s ", $2, $1}' || true
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
[api]
# the API runs as shipped, on any free port (not 8080, which may be taken)
listen = "127.0.0.1:0"
[sip]
listen = "127.0.0.1:$PORT"
[auth]
algorithms = ["MD5", "SHA-256"]
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
best=0
for rate in "${RATES[@]}"; do
  c0=$(cpu_ticks $PID)
  read -r offered ok failed secs done < <(drive "$rate" $PORT $((rate * SECONDS_PER_RATE)))
  c1=$(cpu_ticks $PID)
  cpu=$(python3 -c "print(f'daemon cpu {($c1-$c0)/100/$SECONDS_PER_RATE*100:.0f}% of one core, {($c1-$c0)*10000/max($ok,1):.0f} us per registration')")
  line=$(report switchboard "$rate" "$offered" "$ok" "$failed" "$secs" "$done" "$cpu")
  echo "$line; valid credentials refused: $(refused) $(unexpected)"
  case "$line" in *" HELD "*) best=$rate ;; esac
  sleep 2
done
echo "== overload: 1.5x the highest rate held ($best/s)"
over=$(( best * 3 / 2 ))
if [ "$best" -gt 0 ]; then
  read -r offered ok failed secs done < <(drive "$over" $PORT $((over * SECONDS_PER_RATE)))
  line=$(report switchboard "$over" "$offered" "$ok" "$failed" "$secs" "$done")
  echo "$line; valid credentials refused: $(refused) $(unexpected)"
  # Recovery: one registration every 50 ms from the moment the overload stops; the first of 20 in a row to be
  # answered 200 within 200 ms marks the recovery.
  python3 - "$ROOT" "$WORK" "$PORT" <<'PY'
import socket, subprocess, sys, time
root, work, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
start, streak, first_ok = time.monotonic(), 0, None
for i in range(600):
    t0 = time.monotonic()
    r = subprocess.run(["sipp", "-sf", f"{root}/tests/sipp/register_auth.xml", "-inf", f"{work}/users.csv", "-i", "127.0.0.1",
                        "-p", "0", "-m", "1", "-timeout", "1s", "-recv_timeout", "200", "-nostdin", f"127.0.0.1:{port}"],
                       cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        streak += 1
        first_ok = first_ok if first_ok is not None and streak > 1 else t0 - start
        if streak >= 20:
            break
    else:
        streak = 0
    time.sleep(max(0.0, 0.05 - (time.monotonic() - t0)))
print(f"recovery: registrations answered at once again {first_ok:.2f} s after the overload stopped" if streak >= 20
      else "recovery: not within 30 s")
PY
  grep -E "overload" "$WORK/daemon.log" | sed 's/^[^ ]* *//' | tail -4 || true
fi
echo "RSS after the rate runs:                             $(( $(rss_kb $PID) / 1024 )) MiB"
"$BIN" registrations --json | python3 -c "import json,sys; print('bindings stored:', len(json.load(sys.stdin)))"
kill -TERM $PID; wait $PID || true

# Shared by the benchmark scripts (sourced): SIPp statistics, the verdict line, and /proc readings.

# Reads SIPp's -trace_stat file for a run of CALLS at RATE whose calls last HOLD_MS; prints
# "offered completed failed seconds done_in_window". The window is the time the load was offered (plus the hold
# of the last calls and one second of slack): calls still stuck after that count as failures, not throughput.
sipp_stats() { # stat.csv calls rate hold_ms
  python3 - "$@" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, data = rows[0], rows[1:]
def secs(row):
    t = row[h.index('ElapsedTime(C)')].split(':')
    return int(t[0]) * 3600 + int(t[1]) * 60 + int(t[2]) + (int(t[3]) / 1000 if len(t) > 3 else 0)
calls, rate, hold = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) / 1000
window = calls / rate + hold
last = data[-1]
ok, failed = int(last[h.index('SuccessfulCall(C)')]), int(last[h.index('FailedCall(C)')])
in_window = [r for r in data if secs(r) <= window + 1.0]
done = int(in_window[-1][h.index('SuccessfulCall(C)')]) if in_window else 0
print(calls, ok, failed, f"{(secs(in_window[-1]) - hold if in_window else 0):.2f}", done)
PY
}

# One verdict line: a rate is held when < 0.1 % fail and completions keep up with >= 97 % of the offered rate.
report() { # label rate offered completed failed secs done_in_window [cpu]
  python3 - "$@" <<'PY'
import sys
label, rate, offered, ok, failed, secs, done = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
cpu = sys.argv[8] if len(sys.argv) > 8 else ''
achieved = done / secs if secs > 0 else 0
fail_pct = 100.0 * failed / max(offered, 1)
held = fail_pct < 0.1 and achieved >= 0.97 * rate
print(f"{label:11} offered {rate:6}/s  completed {ok:7}  failed {failed:6} ({fail_pct:.3f}%)  achieved {achieved:8.0f}/s  {'HELD' if held else 'not held'} {cpu}")
PY
}

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

#!/usr/bin/env bash
# Portal and API page cost: a service with DEVICES devices (all registered-looking is not needed: the page reads
# their stored state either way), signed in as its customer, then N requests one after another to:
#   - /healthz                              the baseline: the same HTTP server, one tiny database read
#   - /portal/services/ID/devices           the SIP Devices screen (every device, its state and bindings)
#   - /api/v1/services/ID/devices           the same data as JSON, with a customer's token
# and the same two with 10 devices. Reports p50, p90 and p99 latency in ms, client-side, keep-alive off (a new
# TCP connection per request, as a browser's first visit). Shipped settings; release build.
#
#   bench/portal.sh [DEVICES]        default: 1000
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DEVICES="${1:-1000}"
N="${N:-200}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
cargo build --release --quiet -p switchboard
BIN="$CARGO_TARGET_DIR/release/switchboard"
WORK="$(mktemp -d)"
cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
API_PORT=18480; SIP_PORT=16480
cat > "$WORK/switchboard.toml" <<TOML
[api]
listen = "127.0.0.1:$API_PORT"
[sip]
listen = "127.0.0.1:$SIP_PORT"
[database]
url = "sqlite://$WORK/bench.db"
[log]
level = "warn"
TOML
export SWITCHBOARD_CONFIG="$WORK/switchboard.toml"
"$BIN" customer add Bench >/dev/null
"$BIN" service add --customer Bench --name big --mode trunk >/dev/null
"$BIN" service add --customer Bench --name small --mode trunk >/dev/null
python3 - "$WORK" "$DEVICES" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
with open(f"{work}/big.csv", "w") as f:
    f.write("name,auth_id,password\n")
    for i in range(n):
        f.write(f"Phone {i},big-{i},password-{i:06d}x\n")
with open(f"{work}/small.csv", "w") as f:
    f.write("name,auth_id,password\n")
    for i in range(10):
        f.write(f"Phone {i},small-{i},password-{i:06d}x\n")
PY
"$BIN" device import --service big "$WORK/big.csv" >/dev/null
"$BIN" device import --service small "$WORK/small.csv" >/dev/null
LINK=$("$BIN" login invite --email bench@example.com --customer Bench --print-link | tail -n1)
TOKEN=$("$BIN" token create --name bench --customer Bench 2>/dev/null)
"$BIN" run 2>"$WORK/daemon.log" &
DAEMON=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$API_PORT/healthz" >/dev/null && break; sleep 0.1; done

python3 - "$API_PORT" "$LINK" "$TOKEN" "$N" "$DEVICES" "$DAEMON" <<'PY'
import http.client, sys, time, urllib.parse
port, link, token, n, devices, pid = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]

def request(method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data

path = urllib.parse.urlparse(link).path
form = {"Content-Type": "application/x-www-form-urlencoded"}
request("POST", path, "password=bench-password-1&again=bench-password-1", form)
r, _ = request("POST", "/portal/login", "email=bench%40example.com&password=bench-password-1", form)
cookie = r.getheader("Set-Cookie").split(";")[0]
services = {}
r, body = request("GET", "/api/v1/services", headers={"Authorization": f"Bearer {token}"})
import json
for s in json.loads(body):
    services[s["name"]] = s["id"]

def ticks():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def measure(label, path, headers):
    r, body = request("GET", path, headers=headers)
    assert r.status == 200, (path, r.status, body[:200])
    times = []
    t0, c0 = time.time(), ticks()
    for _ in range(n):
        start = time.perf_counter()
        r, body = request("GET", path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
        assert r.status == 200
    wall, cpu = time.time() - t0, (ticks() - c0) / 100
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))]
    print(f"{label:42} p50 {pct(50):7.2f} ms  p90 {pct(90):7.2f} ms  p99 {pct(99):7.2f} ms  "
          f"{len(body) / 1024:7.1f} KiB  daemon CPU {1000 * cpu / n:6.2f} ms/request")

print(f"{n} requests each, one at a time, a new connection per request")
measure("/healthz (baseline)", "/healthz", {})
for name, count in (("small", 10), ("big", int(devices))):
    sid = services[name]
    measure(f"portal SIP Devices, {count} devices", f"/portal/services/{sid}/devices", {"Cookie": cookie})
    measure(f"API devices JSON, {count} devices", f"/api/v1/services/{sid}/devices", {"Authorization": f"Bearer {token}"})
PY

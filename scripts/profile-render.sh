#!/usr/bin/env bash
# Instructions the server executes for one /render of 100 series x 1 day
# (valgrind's callgrind), the load of scripts/render-latency.sh: the points
# are stored through the course port with instrumentation off, then one
# render is counted, from its request to the last byte of its answer.
# Instruction counts repeat from run to run on a shared machine, where
# latencies do not: they show which of fetch (store decoding), grid,
# consolidation and JSON a change to the render path bought.
# Usage: scripts/profile-render.sh [MAX_DATA_POINTS]   (installs valgrind
# if missing; METRICSD=path profiles another build with the same load).
# The callgrind file stays in target/profile/ for callgrind_annotate.
NEEDS="valgrind"
source "$(dirname "$0")/common.sh"
BIN=${METRICSD:-$ROOT/target/release/metricsd}
OUT=$ROOT/target/profile
mkdir -p "$OUT"
name=render-${1:-all}
log=$WORK/$name.log
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.$name" \
  "$BIN" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --in-memory >"$log" 2>&1 &
pid=$!; PIDS+=($pid)
course=$(wait_listening "$log" 3000) # valgrind starts slowly
for _ in $(seq 3000); do grep -q 'HTTP API and page on' "$log" && break; sleep 0.01; done
http=$(sed -n 's#.*HTTP API and page on http://\([^/]*\)/.*#\1#p' "$log" | head -1)
python3 - "$course" "$http" "$pid" "${1:-}" <<'PY'
import http.client, importlib.util, subprocess, sys, time
spec = importlib.util.spec_from_file_location("latency", "scripts/render-latency.py")
latency = importlib.util.module_from_spec(spec)
spec.loader.exec_module(latency)
course, addr, pid, max_points = sys.argv[1:5]
now = int(time.time())
latency.load(course, now)
host, port = addr.rsplit(":", 1)
conn = http.client.HTTPConnection(host, int(port), timeout=300)
path = f"/render?target=render.*.*&from={now - latency.DAY}&until={now}&format=json"
if max_points:
    path += f"&maxDataPoints={max_points}"
subprocess.run(["callgrind_control", "-i", "on", pid], check=True, stdout=subprocess.DEVNULL)
conn.request("GET", path)
resp = conn.getresponse()
body = resp.read()
subprocess.run(["callgrind_control", "-i", "off", pid], check=True, stdout=subprocess.DEVNULL)
if resp.status != 200 or body.count(b'"target"') != latency.SERIES:
    raise SystemExit(f"render answered {resp.status}: {body[:200]!r}")
print(f"== {len(body)} bytes of JSON, maxDataPoints {max_points or 'unset'}")
PY
kill -TERM $pid; wait $pid || true
callgrind_annotate "$OUT/callgrind.$name" 2>/dev/null | awk '/PROGRAM TOTALS/{print "instructions for one render: " $1}'
# Inclusive costs: each function with what it calls.
callgrind_annotate --inclusive=yes "$OUT/callgrind.$name" 2>/dev/null |
  awk '/file:function/{on=1; next} on && /%\)/' | head -16 |
  sed -E 's/^ *([0-9,]+) \( *([0-9.]+)%\) +(\?\?\?:)?/  \2% \1 /; s/ \[[^]]*\]$//' | cut -c1-150

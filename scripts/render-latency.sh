#!/usr/bin/env bash
# /render latency of 100 series x 1 day (issue 14's goal: p99 under 50 ms)
# against a fresh in-memory metricsd on loopback, measured by
# scripts/render-latency.py over one keep-alive connection.
# Usage: scripts/render-latency.sh [REQUESTS [MAX_DATA_POINTS]]
#   (METRICSD=path measures another build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${METRICSD:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin metricsd
  bin=target/release/metricsd
fi
log=$(mktemp)
"$bin" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --in-memory 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$log" && break; sleep 0.1; done
course=$(sed -n 's/^listening on \(.*\)$/\1/p' "$log" | head -1)
http=$(sed -n 's#.*HTTP API and page on http://\([^/]*\)/.*#\1#p' "$log" | head -1)
[ -n "$course" ] && [ -n "$http" ] || { cat "$log"; echo "metricsd did not start" >&2; exit 1; }
python3 scripts/render-latency.py "$course" "$http" "${1:-200}" ${2:+"$2"}

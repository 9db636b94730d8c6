# Shared by the agent scripts: `source "$(dirname "$0")/lib.sh" NAME`.
#
# Each script installs one real agent from its package registry if it is
# missing, starts a fresh in-memory metricsd on loopback with a Graphite
# port (and the HTTP API when this build has --http-listen), points the
# agent at it, and checks what arrives: through the course protocol's
# `get` (metricsctl) and, when there is an HTTP API, through
# `/render?format=json` as Grafana reads it. Everything runs as the current
# user on 127.0.0.1, in a temporary directory removed on exit with every
# process started killed. The agent's part is bounded by AGENT_SECONDS
# (default 60) after the install; a failure is one line on stderr and exit
# status 1.
#
# Sets ROOT, WORK, and after start_metricsd: MADDR (course protocol),
# GADDR/GPORT (Graphite, TCP and UDP), HADDR (HTTP, empty without it).
# METRICSD=path runs that build instead of building a release one (and the
# metricsctl beside it, or METRICSCTL=path): CI gives its debug build.
set -euo pipefail
AGENT=$1
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
WHO=$AGENT DEADLINE_SECONDS=${AGENT_SECONDS:-60}
# say, fail, start_deadline, wait_until, timed, install_deb, need_deb,
# free_port.
source "$ROOT/scripts/loopback.sh"

# background LOG COMMAND...: starts COMMAND with its output in LOG, killed on
# exit; sets BGPID.
background() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  BGPID=$!
  PIDS+=("$BGPID")
}

# alive PID LOG WHAT: fails with LOG's tail when PID has exited.
alive() { kill -0 "$1" 2>/dev/null || fail "$3 exited: $(tail -5 "$2")"; }

# log_addr LOG PREFIX: the address after PREFIX at the start of a line of
# LOG, once that line is whole.
log_addr() { grep -a -o "^$2[^ ]*" "$1" 2>/dev/null | grep -v ':$' | head -1 | sed "s|^$2||; s|/$||"; }

start_metricsd() {
  if [ -z "${METRICSD:-}" ]; then
    (cd "$ROOT" && cargo build --release -q --bin metricsd --bin metricsctl) || fail "cargo build failed"
  fi
  METRICSD=$(realpath "${METRICSD:-$ROOT/target/release/metricsd}")
  METRICSCTL=${METRICSCTL:-$(dirname "$METRICSD")/metricsctl}
  local args=(--listen 127.0.0.1:0 --graphite-listen 127.0.0.1:0 --in-memory)
  "$METRICSD" --help | grep -q -- --graphite-listen || fail "this metricsd has no --graphite-listen"
  if "$METRICSD" --help | grep -q -- --http-listen; then args+=(--http-listen 127.0.0.1:0); fi
  local log=$WORK/metricsd.log
  : >"$log"
  background "$log" "$METRICSD" "${args[@]}"
  MPID=$BGPID
  # The course protocol's address is printed after the Graphite port's.
  wait_until "metricsd to listen" eval '[ -n "$(log_addr "$WORK/metricsd.log" "listening on ")" ]'
  MADDR=$(log_addr "$log" "listening on ")
  GADDR=$(log_addr "$log" "graphite listening on ")
  GPORT=${GADDR##*:}
  HADDR=
  if [[ " ${args[*]} " == *" --http-listen "* ]]; then
    wait_until "metricsd's HTTP address" eval '[ -n "$(log_addr "$WORK/metricsd.log" "HTTP API and page on http://")" ]'
    HADDR=$(log_addr "$log" "HTTP API and page on http://")
  fi
  [ -n "$GADDR" ] || fail "metricsd printed no Graphite address: $(cat "$log")"
  say "metricsd: course protocol $MADDR, graphite $GADDR, http ${HADDR:-none (this build has no --http-listen)}"
}

# points KEY: the stored points of KEY, one "timestamp value" a line, by
# timestamp, values as the protocol writes them.
points() { "$METRICSCTL" --addr "$MADDR" get "$1" --raw | awk '{print $3, $2}'; }
# keys: every key stored, one a line.
keys() { "$METRICSCTL" --addr "$MADDR" get '*' --raw | awk '{print $1}' | sort -u; }
# stored_count: how many points are stored.
stored_count() { "$METRICSCTL" --addr "$MADDR" get '*' --raw | wc -l; }

# render_matches TARGET "TS VALUE"...: /render?format=json of TARGET, an
# hour either side of the points, holds exactly these values in this order
# and nothing else, each in the grid slot that covers its timestamp
# (graphite puts a point at its timestamp rounded down to the series'
# step, and from is exclusive).
render_matches() {
  python3 - "$HADDR" "$@" <<'EOF'
import json, sys, urllib.parse, urllib.request
addr, target, *want = sys.argv[1:]
want = sorted((int(t), float(v)) for t, v in (w.split() for w in want))
query = urllib.parse.urlencode({"target": target, "from": want[0][0] - 3600, "until": want[-1][0] + 3600, "format": "json"})
with urllib.request.urlopen(f"http://{addr}/render?{query}", timeout=10) as answer:
    series = json.load(answer)
if len(series) != 1:
    sys.exit(f"{len(series)} series for {target!r}")
points = series[0]["datapoints"]
step = points[1][1] - points[0][1] if len(points) > 1 else 1
got = [(ts, value) for value, ts in points if value is not None]
if [v for _, v in got] != [v for _, v in want]:
    sys.exit(f"values {[v for _, v in got]}, want {[v for _, v in want]}")
for (slot, _), (ts, _) in zip(got, want):
    if not slot <= ts < slot + step:
        sys.exit(f"the point at {ts} is in the slot of {slot} (step {step})")
EOF
}

# expect_points KEY "TS VALUE"...: KEY holds exactly these points, by
# `get` and (with an HTTP API) by /render; values compared as numbers.
expect_points() {
  local key=$1
  shift
  local want got
  want=$(printf '%s\n' "$@" | sort -n)
  got=$(points "$key" | sort -n)
  same_points "$want" "$got" || fail "get $key: got [$(echo $got)], want [$(echo $want)]"
  if [ -n "$HADDR" ]; then
    got=$(render_matches "$key" "$@" 2>&1) || fail "/render of $key: $got"
  fi
}

# same_points A B: two lists of "timestamp value" lines are equal, values
# compared as numbers.
same_points() {
  python3 - "$1" "$2" <<'EOF'
import sys
parse = lambda text: [(int(t), float(v)) for t, v in (line.split() for line in text.splitlines() if line.strip())]
sys.exit(0 if parse(sys.argv[1]) == parse(sys.argv[2]) else 1)
EOF
}

# send_plaintext PORT: sends stdin to 127.0.0.1:PORT over TCP and closes.
send_plaintext() {
  python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(sys.stdin.buffer.read())
s.close()' "$1"
}

pass() { echo "$AGENT: PASS: $*"; }

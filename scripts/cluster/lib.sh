# Shared by up.sh, down.sh, check.sh and bench.sh: `source "$(dirname "$0")/lib.sh"`.
#
# A cluster lives in one directory, $CLUSTER_DIR (made by up.sh under
# $TMPDIR): for node i (1..N) node$i/ holds its data directory, log, pid
# file and ports; relay/ carbon-c-relay's configuration, log, pid and
# statistics; graphite/ graphite-web's settings, storage, log and pid; and
# cluster.env the addresses, for scripts and people:
#   NODES=N REPLICATION=R RELAY=127.0.0.1:P GRAPHITE_WEB=127.0.0.1:P
#   NODE1_COURSE=... NODE1_GRAPHITE=... NODE1_HTTP=...  (and so on)
# Everything listens on 127.0.0.1 only and runs as the current user.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# up.sh records the directory of the cluster it started here, for down.sh
# without an argument; target/ is the build's, ignored by git.
LAST_CLUSTER=$ROOT/target/cluster.dir
PY=${PYTHON:-python3}
# graphite-web runs on Debian's own Python, where apt installs it (another
# python3 may come first on the PATH).
GW_PY=/usr/bin/python3

WHO=cluster DEADLINE_SECONDS=${CLUSTER_SECONDS:-60}
# say, fail, start_deadline, wait_until, timed, install_deb, need_deb,
# free_port.
source "$ROOT/scripts/loopback.sh"

# graphite-web has no command of its own on the PATH: its module tells.
need_graphite_web() {
  "$GW_PY" -c 'import graphite.settings, django' 2>/dev/null || install_deb graphite-web
}

# need_metricsd: METRICSD (exported, an absolute path) is the metricsd to
# run, a release build unless METRICSD names one; METRICSCTL the
# metricsctl beside it, or this tree's release one.
need_metricsd() {
  if [ -z "${METRICSD:-}" ]; then
    (cd "$ROOT" && cargo build --release -q --bin metricsd --bin metricsctl) || fail "cargo build failed"
  fi
  METRICSD=$(realpath "${METRICSD:-$ROOT/target/release/metricsd}")
  METRICSCTL=$(dirname "$METRICSD")/metricsctl
  if [ ! -x "$METRICSCTL" ]; then
    (cd "$ROOT" && cargo build --release -q --bin metricsctl) || fail "cargo build failed"
    METRICSCTL=$ROOT/target/release/metricsctl
  fi
  export METRICSD METRICSCTL
}

# stat_points ADDR...: the points the servers at ADDR (course ports) hold
# together, from their `stats`.
stat_points() {
  local addr total=0
  for addr in "$@"; do
    total=$((total + $("$METRICSCTL" --addr "$addr" stats --raw | awk '$1 == "points" { print $2 }')))
  done
  echo "$total"
}

# Ports (free_port) are chosen once, so that a node restarted by check.sh
# comes back where the relay and graphite-web look for it.

# listening PORT: something accepts TCP connections on 127.0.0.1:PORT.
listening() { "$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$1" 2>/dev/null; }

# alive PIDFILE: the process of PIDFILE runs.
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# started WHAT PIDFILE LOG PORT: waits until WHAT listens on PORT, failing
# with its log's tail if it exits first.
started() {
  local what=$1 pidfile=$2 log=$3 port=$4
  until listening "$port"; do
    alive "$pidfile" || fail "$what exited: $(tail -5 "$log")"
    ((SECONDS < DEADLINE)) || fail "timed out waiting for $what to listen on $port: $(tail -5 "$log")"
    sleep 0.1
  done
}

# stop_pids PIDFILE...: stops the processes of the pid files, all at once
# (SIGTERM, then SIGKILL for any still running after 10 s; a graceful stop
# of metricsd takes up to 3 s, carbon-c-relay's a few), waits for them to
# go, and removes the pid files. Only those processes: nothing by name.
stop_pids() {
  local pidfile pids=() pid i running
  for pidfile in "$@"; do
    [ -s "$pidfile" ] && pid=$(cat "$pidfile") && kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for ((i = 0; i < 100; i++)); do
    running=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
    ((running)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -f "$@"
}

# load_cluster DIR: reads DIR/cluster.env into the environment.
load_cluster() {
  CLUSTER_DIR=$1
  [ -f "$CLUSTER_DIR/cluster.env" ] || fail "$CLUSTER_DIR holds no cluster (no cluster.env)"
  # shellcheck disable=SC1091
  source "$CLUSTER_DIR/cluster.env"
}

# node_var I NAME: NODE<I>_<NAME> of cluster.env (COURSE, GRAPHITE, HTTP).
node_var() { local v="NODE$1_$2"; echo "${!v}"; }

# start_node I: starts node I of the loaded cluster on its ports and data
# directory (again, after stop_node) and waits until it listens.
start_node() {
  local i=$1 dir=$CLUSTER_DIR/node$1
  mkdir -p "$dir"
  # setsid: its own process group, so that a Ctrl-C of the script that
  # started it does not stop it; down.sh does.
  setsid "$METRICSD" --listen "$(node_var "$i" COURSE)" --graphite-listen "$(node_var "$i" GRAPHITE)" \
    --http-listen "$(node_var "$i" HTTP)" --data-dir "$dir/data" >>"$dir/log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
  started "node $i" "$dir/pid" "$dir/log" "$(node_var "$i" HTTP | cut -d: -f2)"
}

# stop_node I: stops node I (a graceful stop: its log is flushed).
stop_node() { stop_pids "$CLUSTER_DIR/node$1/pid"; }

# node_points I: the points node I holds (its stats' `points`).
node_points() { stat_points "$(node_var "$1" COURSE)"; }
# cluster_points: the points all nodes hold together (replicas counted).
cluster_points() {
  local i total=0
  for ((i = 1; i <= NODES; i++)); do total=$((total + $(node_points "$i"))); done
  echo "$total"
}

# relay_stat NAME: the relay's last figure NAME (its statistics go to a
# file every RELAY_STATS_SECONDS: relay.metricsQueued, relay.metricsDropped, and per
# destination relay.destinations.<ip_with_underscores:port>.queued / .dropped / .sent), 0
# before the first.
relay_stat() {
  local file=$CLUSTER_DIR/relay/stats.txt
  [ -f "$file" ] || { echo 0; return; }
  awk -v n="$1" '$1 == n {v = $2} END {print v + 0}' "$file"
}

#!/usr/bin/env bash
# Starts a metricsd cluster on loopback: N metricsd nodes (each its own
# course, Graphite and HTTP ports and its own data directory), Debian's
# carbon-c-relay in front of their Graphite ports (cluster jump_fnv1a_ch,
# replication $REPLICATION), and Debian's graphite-web reading them all
# (CLUSTER_SERVERS = the nodes' HTTP addresses), run by Django's own server.
# Installs carbon-c-relay and graphite-web with apt-get when missing; changes
# no system configuration (graphite-web's settings are in the cluster's
# directory, picked by GRAPHITE_SETTINGS_MODULE).
#
# Usage: scripts/cluster/up.sh [N]            (N nodes, default 3)
# Environment:
#   REPLICATION=R   copies of each series, on R different nodes [default: 1]
#   METRICSD=path   the metricsd to run [default: a release build]
#   RELAY_QUEUE=Q   carbon-c-relay's queue per node, in points [default: 25000, its own]
#   RELAY_STATS_SECONDS=S  how often the relay writes its figures to relay/stats.txt [default: 10]
#   CLUSTER_DIR=d   where the cluster lives [default: a new directory under $TMPDIR]
# Prints the addresses, and the directory to give scripts/cluster/down.sh.
source "$(dirname "$0")/lib.sh"
N=${1:-3}
REPLICATION=${REPLICATION:-1}
[[ $N =~ ^[1-9][0-9]*$ ]] || fail "usage: up.sh [N], N nodes (a positive number)"
((REPLICATION >= 1 && REPLICATION <= N)) || fail "REPLICATION=$REPLICATION: between 1 and the $N nodes"

need_deb carbon-c-relay carbon-c-relay
need_graphite_web
start_deadline

need_metricsd

CLUSTER_DIR=${CLUSTER_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/metricsd-cluster.XXXXXX")}
mkdir -p "$CLUSTER_DIR"/{relay,graphite/storage,graphite/log}
[ ! -f "$CLUSTER_DIR/cluster.env" ] || fail "$CLUSTER_DIR holds a cluster already (scripts/cluster/down.sh $CLUSTER_DIR)"
mkdir -p "$(dirname "$LAST_CLUSTER")" && echo "$CLUSTER_DIR" >"$LAST_CLUSTER"

# Every port chosen now and kept: a node restarts on the same ones.
{
  echo "NODES=$N"
  echo "REPLICATION=$REPLICATION"
  echo "METRICSD=$METRICSD"
  echo "RELAY=127.0.0.1:$(free_port)"
  echo "GRAPHITE_WEB=127.0.0.1:$(free_port)"
  for ((i = 1; i <= N; i++)); do
    echo "NODE${i}_COURSE=127.0.0.1:$(free_port)"
    echo "NODE${i}_GRAPHITE=127.0.0.1:$(free_port)"
    echo "NODE${i}_HTTP=127.0.0.1:$(free_port)"
  done
} >"$CLUSTER_DIR/cluster.env"
load_cluster "$CLUSTER_DIR"
# A failure from here on stops what was started.
trap '[ $? -eq 0 ] || "$ROOT/scripts/cluster/down.sh" "$CLUSTER_DIR" >/dev/null 2>&1 || true' EXIT

for ((i = 1; i <= N; i++)); do start_node "$i"; done

# carbon-c-relay: the nodes' Graphite ports in order (jump hashing places a
# series by its name and the number of members; adding a node at the end
# moves about 1/N of the series, see docs/SCALING.md). Its statistics go
# to a file (relay/stats.txt) rather than into the cluster.
members=""
for ((i = 1; i <= N; i++)); do members+=" $(node_var "$i" GRAPHITE)"; done
cat >"$CLUSTER_DIR/relay/relay.conf" <<CONF
listen type linemode ${RELAY} proto tcp ;
cluster metricsd jump_fnv1a_ch replication ${REPLICATION}${members} ;
cluster stats file ${CLUSTER_DIR}/relay/stats.txt ;
statistics submit every ${RELAY_STATS_SECONDS:-10} seconds prefix with relay send to stats stop ;
match * send to metricsd stop ;
CONF
setsid carbon-c-relay -f "$CLUSTER_DIR/relay/relay.conf" -H cluster -q "${RELAY_QUEUE:-25000}" \
  >"$CLUSTER_DIR/relay/log" 2>&1 </dev/null &
echo $! >"$CLUSTER_DIR/relay/pid"
started carbon-c-relay "$CLUSTER_DIR/relay/pid" "$CLUSTER_DIR/relay/log" "${RELAY##*:}"

# graphite-web: its settings module is graphite.settings, which imports the
# module GRAPHITE_SETTINGS_MODULE names for the local settings: ours.
servers=""
for ((i = 1; i <= N; i++)); do servers+="'$(node_var "$i" HTTP)', "; done
cat >"$CLUSTER_DIR/graphite/cluster_local_settings.py" <<SETTINGS
# graphite-web's local settings for this cluster (scripts/cluster/up.sh).
SECRET_KEY = '$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')'
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
TIME_ZONE = 'UTC'
# The storage nodes, asked for /metrics/find and /render with local=1 and
# format=pickle; graphite-web merges their answers.
CLUSTER_SERVERS = [${servers}]
# No whisper files of its own: every series comes from the nodes.
STORAGE_DIR = '${CLUSTER_DIR}/graphite/storage'
LOG_DIR = '${CLUSTER_DIR}/graphite/log'
INDEX_FILE = '${CLUSTER_DIR}/graphite/storage/index'
# No caching of finds or renders, so that every read asks the nodes (what
# check.sh verifies, and what bench.sh measures).
CACHES = {'default': {'BACKEND': 'django.core.cache.backends.dummy.DummyCache'}}
# graphite-web stops asking a node that failed for REMOTE_RETRY_DELAY
# (default 60 s). On loopback a stopped node refuses at once, so asking it
# every time costs nothing, and a restarted node is read again at once.
REMOTE_RETRY_DELAY = 0
# Django 3.2's warning about graphite-web 1.1.8's models, said at every start.
SILENCED_SYSTEM_CHECKS = ['models.W042']
SETTINGS
(
  cd "$CLUSTER_DIR/graphite"
  export PYTHONPATH=$CLUSTER_DIR/graphite DJANGO_SETTINGS_MODULE=graphite.settings GRAPHITE_SETTINGS_MODULE=cluster_local_settings
  # Its own SQLite database (users, profiles: /metrics/find asks for the
  # default profile), in the cluster's directory.
  "$GW_PY" -m django migrate --run-syncdb -v0 >"$CLUSTER_DIR/graphite/migrate.log" 2>&1 ||
    fail "graphite-web's database: $(tail -5 "$CLUSTER_DIR/graphite/migrate.log")"
  setsid "$GW_PY" -m django runserver --noreload "$GRAPHITE_WEB" >"$CLUSTER_DIR/graphite/server.log" 2>&1 </dev/null &
  echo $! >"$CLUSTER_DIR/graphite/pid"
)
started graphite-web "$CLUSTER_DIR/graphite/pid" "$CLUSTER_DIR/graphite/server.log" "${GRAPHITE_WEB##*:}"

say "$N metricsd nodes (replication $REPLICATION) behind carbon-c-relay, read by graphite-web $(cd "$CLUSTER_DIR/graphite" && PYTHONPATH=. GRAPHITE_SETTINGS_MODULE=cluster_local_settings "$GW_PY" -c 'import graphite.settings as s; print(s.WEBAPP_VERSION)' 2>/dev/null)"
say "  write Graphite lines to   $RELAY"
say "  read (graphite-web)       http://$GRAPHITE_WEB/render?target=...&format=json"
for ((i = 1; i <= N; i++)); do
  say "  node $i: course $(node_var "$i" COURSE), graphite $(node_var "$i" GRAPHITE), http http://$(node_var "$i" HTTP)/"
done
say "  stop: scripts/cluster/down.sh $CLUSTER_DIR"
echo "$CLUSTER_DIR"

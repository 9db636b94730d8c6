#!/usr/bin/env bash
# The cluster end to end: 3 metricsd nodes behind carbon-c-relay
# (jump_fnv1a_ch, replication $REPLICATION, default 2) and graphite-web
# reading them (scripts/cluster/up.sh). Sends a generated stream (SERIES
# series, default 3000, POINTS points each, default 20) through the relay
# and reads every series back through graphite-web's /render (format=json):
# any point missing or wrong fails. Then stops node 2 while a second phase
# of writes goes on, shows what the relay queues for it and what is lost,
# reads everything through graphite-web again (with replication 2 nothing
# may be missing; with 1, the stopped node's series show as missing data
# and the page still answers 200), restarts node 2 on the same ports and
# data directory, waits for the relay to deliver its queue, and reads
# everything once more.
#
# All on 127.0.0.1; bounded by CHECK_SECONDS (default 120) after the
# installs; stops everything it started and removes its directory.
# Usage: scripts/cluster/check.sh   (METRICSD=path runs that build; see up.sh)
source "$(dirname "$0")/lib.sh"
export REPLICATION=${REPLICATION:-2}
SERIES=${SERIES:-3000}
POINTS=${POINTS:-20}
BEGAN=$SECONDS
need_deb carbon-c-relay carbon-c-relay
need_graphite_web
INSTALLED=$SECONDS
# For this script's waits, and for up.sh's, which it runs.
export CLUSTER_SECONDS=${CHECK_SECONDS:-120}
DEADLINE_SECONDS=$CLUSTER_SECONDS
start_deadline

need_metricsd
CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/metricsd-cluster-check.XXXXXX")
SENDER=
cleanup() {
  local status=$?
  [ -z "$SENDER" ] || kill "$SENDER" 2>/dev/null || true
  # KEEP_ON_FAILURE=1 keeps the directory (logs, data) of a failed run.
  local keep=$((status != 0 && ${KEEP_ON_FAILURE:-0}))
  if [ -f "$CLUSTER_DIR/cluster.env" ]; then
    KEEP=$keep "$ROOT/scripts/cluster/down.sh" "$CLUSTER_DIR" 2>/dev/null || true
  fi
  ((keep)) || rm -rf "$CLUSTER_DIR" "$CLUSTER_DIR.up.log"
  ((!keep)) || say "kept $CLUSTER_DIR"
  exit $status
}
trap cleanup EXIT
RELAY_STATS_SECONDS=1 CLUSTER_DIR=$CLUSTER_DIR "$ROOT/scripts/cluster/up.sh" 3 >/dev/null 2>"$CLUSTER_DIR.up.log" ||
  fail "up.sh failed: $(tail -5 "$CLUSTER_DIR.up.log")"
rm -f "$CLUSTER_DIR.up.log"
load_cluster "$CLUSTER_DIR"
say "3 nodes, replication $REPLICATION, relay $RELAY, graphite-web $GRAPHITE_WEB (up in $((SECONDS - INSTALLED)) s)"

T0=$(( ($(date +%s) - 7200) / 10 * 10 ))
stream() { "$PY" "$ROOT/scripts/cluster/stream.py" "$@"; }
# verify PHASES: graphite-web's view of the first PHASES phases, as JSON.
verify() { stream verify "$GRAPHITE_WEB" "$SERIES" "$POINTS" "$T0" "$1" || fail "graphite-web failed a read"; }
field() { "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# settled EXPECTED: the nodes hold EXPECTED points together.
settled() { [ "$(cluster_points)" -ge "$1" ]; }

# Phase 1: everything up.
want=$((SERIES * POINTS * REPLICATION))
stream send "${RELAY##*:}" "$SERIES" "$POINTS" "$T0" 0 >/dev/null || fail "cannot send to the relay"
wait_until "the nodes to hold $want points" settled "$want"
seen=$(verify 1)
[ "$(field "$seen" missing)$(field "$seen" wrong)" = 00 ] || fail "phase 1 through graphite-web: $seen"
say "phase 1: $((SERIES * POINTS)) points of $SERIES series through the relay ($want stored with the replicas), each read back exactly through graphite-web: $seen"

# Phase 2: node 2 stops while the writes go on (over 3 s).
node2_series_before=$(node_points 2)
node2_series=$((node2_series_before / POINTS))
stream send "${RELAY##*:}" "$SERIES" "$POINTS" "$T0" 1 3 >"$CLUSTER_DIR/sender.progress" &
SENDER=$!
wait_until "a quarter of phase 2 sent" eval '[ "$(tail -1 "$CLUSTER_DIR/sender.progress" 2>/dev/null | cut -c1-4)" \> 0.25 ]'
stop_node 2
say "phase 2: node 2 (holding $node2_series series) stopped with $(tail -1 "$CLUSTER_DIR/sender.progress") of the phase's points sent"
wait "$SENDER" || fail "the sender failed"
SENDER=
dest="relay.destinations.$(node_var 2 GRAPHITE | tr . _)"
# The relay's figures come every second: wait for a set written after the
# last write (each line ends in its Unix time).
sent_at=$(date +%s)
stats_after() { [ "$(tail -1 "$CLUSTER_DIR/relay/stats.txt" | awk '{print $3}')" -gt "$sent_at" ]; }
wait_until "the relay's statistics" stats_after
queued=$(relay_stat "$dest.queued")
dropped=$(relay_stat "$dest.dropped")
say "phase 2: the relay holds $queued points queued for node 2 and has dropped $dropped (queue ${RELAY_QUEUE:-25000})"
seen=$(verify 2)
say "phase 2: graphite-web with node 2 down (every page 200): $seen"
if ((REPLICATION >= 2)); then
  [ "$(field "$seen" missing)$(field "$seen" wrong)" = 00 ] || fail "with replication $REPLICATION, node 2 down lost points: $seen"
else
  [ "$(field "$seen" wrong)" = 0 ] || fail "wrong values with node 2 down: $seen"
fi

# Phase 3: node 2 back; the relay delivers what it queued.
start_node 2
queue_empty() { [ "$(relay_stat "$dest.queued")" = 0 ] && [ "$(node_points 2)" -gt "$node2_series_before" ]; }
wait_until "the relay to deliver its queue to node 2" queue_empty
# The queue is empty once written to the socket: wait for node 2 to stop growing.
last=-1
until [ "$last" = "$(node_points 2)" ]; do
  ((SECONDS < DEADLINE)) || fail "timed out waiting for node 2 to settle"
  last=$(node_points 2)
  sleep 0.5
done
node2_want=$((node2_series * POINTS * 2))
lost=$((node2_want - last))
say "phase 3: node 2 restarted and holds $last of its $node2_want points: $lost lost on node 2 (the relay dropped $(relay_stat "$dest.dropped"); the rest were in flight when it stopped)"
seen=$(verify 2)
if ((REPLICATION >= 2)); then
  [ "$(field "$seen" missing)$(field "$seen" wrong)" = 00 ] || fail "after the restart: $seen"
  say "phase 3: graphite-web shows every point of both phases: $seen"
else
  [ "$(field "$seen" wrong)" = 0 ] || fail "wrong values after the restart: $seen"
  say "phase 3: graphite-web after the restart (replication 1: node 2's losses are missing): $seen"
fi
echo "cluster check: PASS: 3 nodes, replication $REPLICATION, $((2 * SERIES * POINTS)) points of $SERIES series; node 2 down lost $lost of its points, graphite-web missed $(field "$seen" missing) (installs $((INSTALLED - BEGAN)) s, check $((SECONDS - INSTALLED)) s)"

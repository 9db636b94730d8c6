#!/usr/bin/env bash
# Stops exactly what scripts/cluster/up.sh started, by its pid files
# (graphite-web, the relay and each node, gracefully, together), and removes the
# cluster's directory (KEEP=1 keeps it: data, logs, settings).
# Usage: scripts/cluster/down.sh [CLUSTER_DIR]   [default: the last one up.sh started]
source "$(dirname "$0")/lib.sh"
dir=${1:-$(cat "$LAST_CLUSTER" 2>/dev/null || true)}
[ -n "$dir" ] || fail "usage: down.sh CLUSTER_DIR (no cluster recorded in $LAST_CLUSTER)"
load_cluster "$dir"
pidfiles=("$CLUSTER_DIR/graphite/pid" "$CLUSTER_DIR/relay/pid")
for ((i = 1; i <= NODES; i++)); do pidfiles+=("$CLUSTER_DIR/node$i/pid"); done
stop_pids "${pidfiles[@]}"
if [ "${KEEP:-0}" = 1 ]; then
  say "stopped; kept $CLUSTER_DIR"
else
  # Only a directory that is a cluster's (checked by load_cluster above).
  rm -rf "$CLUSTER_DIR"
  say "stopped and removed $CLUSTER_DIR"
fi
[ "$(cat "$LAST_CLUSTER" 2>/dev/null)" != "$CLUSTER_DIR" ] || rm -f "$LAST_CLUSTER"

#!/usr/bin/env bash
# Durability figures, as quoted in BENCHMARKS.md:
#   1. Durable put throughput, 50 connections, pipeline 16, same client
#      (metricsd-bench; RPUSH for Redis), same run, rounds alternating:
#      metricsd --fsync always against Redis appendonly + appendfsync
#      always, and everysec against everysec.
#   2. Restart time with 5M points over 1000 keys: from the log alone, and
#      from a snapshot (after a compaction).
#   3. Latency during a compaction of those 5M points: a put load's batch
#      round trips, against the same load on the same data with no
#      compaction.
# Talks only to 127.0.0.1; every run is bounded in requests and stops itself.
# Data directories are made under mktemp -d (the same disk as /tmp).
# Usage: scripts/durability-figures.sh   (installs redis-server, strace and
# bc with apt-get if they are missing)
# SCALE=N divides every request count by N (a quick check that the script
# runs; the figures of BENCHMARKS.md are taken with SCALE=1).
source "$(dirname "$0")/common.sh"
SCALE=${SCALE:-1}
n() { echo $(($1 / SCALE)); }
# A put load: 50 connections, in-order points of 1,000 keys.
rps() { bench "$@" | jfield throughput_rps | cut -d. -f1; }

print_machine
echo "disk under $WORK: $(df -h "$WORK" | awk 'NR==2{print $1, $2}')"

echo "== 1. durable put, 50 connections, pipeline 16 (metricsd-bench, same run)"
for mode in always everysec; do
  start_metricsd "$WORK/m-$mode.log" --data-dir "$WORK/m-$mode" --fsync $mode
  mkdir -p "$WORK/r-$mode"
  start_redis "$WORK/r-$mode.log" --dir "$WORK/r-$mode" --appendonly yes --appendfsync $mode
  N=$(n $([ $mode = always ] && echo 300000 || echo 1000000))
  for round in 1 2 3; do
    # Timestamps above the last round's: every put a new point.
    ts=$((1600000000 + round * 10000000))
    m=$(rps --allow-durable --addr "$MADDR" --connections 50 --pipeline 16 --requests $N --timestamp-base $ts)
    r=$(rps --server redis --addr "$RADDR" --connections 50 --pipeline 16 --requests $N --timestamp-base $ts)
    echo "fsync $mode round $round: metricsd put $m/s, redis RPUSH $r/s, ratio $(echo "scale=2; $m/$r" | bc)"
  done
  stop_metricsd; stop_redis
done

echo "== 2. restart with 5M points over 1000 keys"
DATA=$WORK/five-million
# No compaction while loading: the first restart replays the log alone.
start_metricsd "$WORK/load.log" --data-dir "$DATA" --compact-min-bytes 1000000000000
bench --allow-durable --addr "$MADDR" --connections 1000 --keys 1000 --pipeline 16 --requests $(n 5000000) >/dev/null
stop_metricsd
echo "data: $(du -sh "$DATA" | cut -f1) ($(ls "$DATA" | tr '\n' ' '))"
timed_start() { # $1 = label, rest = flags; reports wall time to listening and the recovery log line
  local t0 t1
  t0=$(date +%s%N)
  start_metricsd "$WORK/restart.log" --data-dir "$DATA" "${@:2}"
  t1=$(date +%s%N)
  echo "$1: listening after $(( (t1 - t0) / 1000000 )) ms; $(grep -o 'recovered.*' "$WORK/restart.log")"
}
timed_start "from the log alone" --compact-min-bytes 1000000000000
stop_metricsd

echo "== 3. latency during a compaction of those 5M points (50 connections, pipeline 1, puts)"
timed_start "again, for the baseline" --compact-min-bytes 1000000000000
echo "without compaction: $("$BENCH" --allow-durable --addr "$MADDR" --connections 50 --requests $(n 300000) --timestamp-base 1700000000 | tail -2 | tr '\n' ' ')"
stop_metricsd
# Any log is over this threshold: the first loop turn begins a compaction.
start_metricsd "$WORK/compact.log" --data-dir "$DATA" --compact-min-bytes 1
echo "during compaction:  $("$BENCH" --allow-durable --addr "$MADDR" --connections 50 --requests $(n 300000) --timestamp-base 1800000000 | tail -2 | tr '\n' ' ')"
for _ in $(seq 300); do grep -q 'compaction .* done' "$WORK/compact.log" && break; sleep 0.1; done
grep -o 'compaction [0-9]*: snapshot.*\|compaction [0-9]* done.*' "$WORK/compact.log"
stop_metricsd
echo "data after compaction: $(du -sh "$DATA" | cut -f1) ($(ls "$DATA" | tr '\n' ' '))"
timed_start "from the snapshot" --compact-min-bytes 1000000000000
stop_metricsd

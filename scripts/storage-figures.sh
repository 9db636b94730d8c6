#!/usr/bin/env bash
# Storage figures of issue 13 (compressed series), as quoted in
# BENCHMARKS.md, for this build against an OLD build of metricsd (the
# release before compressed chunks: commit 83a00ba or earlier):
#   1. Bytes per point of memory, per shape of the realistic mix and for the
#      mix: the server's RSS grown by ingesting it / points (and the engine's
#      store.chunk_bytes / points, where `stats` has that figure).
#   2. Bytes per point on disk: the data directory after a compaction /
#      points, for the mix.
#   3. Ingest rate, put pipeline 16, 50 connections: the plain put load and
#      the mix, rounds alternating between the builds, medians.
#   4. Server CPU per `get` of a 100-point series (user and system time of
#      the server process / gets), rounds alternating, medians.
#   5. `range` of 1 h (360 points) over a 30-day series (259,200 points)
#      p50/p99 against `get` of the whole series (range: this build only).
# The same metricsd-bench (this build's) drives both servers, with
# --allow-durable: the old build's `stats` has no store.durable figure, and
# every server here is started --in-memory by this script. Talks only to
# 127.0.0.1; every run is bounded in requests and stops itself.
# Usage: scripts/storage-figures.sh OLD_METRICSD
#   (or METRICSD_OLD=path scripts/storage-figures.sh)
# SCALE=N divides every point and request count by N (a quick check that
# the script runs; BENCHMARKS.md says which SCALE its figures used).
# ONLY="2 5" runs those sections alone.
NEEDS=bc
source "$(dirname "$0")/common.sh"
OLD=${1:-${METRICSD_OLD:-}}
[ -x "$OLD" ] || { echo "usage: $0 OLD_METRICSD (an executable metricsd of the release before chunks)" >&2; exit 2; }
NEW=$ROOT/target/release/metricsd
SCALE=${SCALE:-1}
n() { echo $(($1 / SCALE)); }
# Series of a memory run: 10 hosts of 20 metrics; points each: 20,000 (2.3
# days at 10 s), so the heads (up to 239 plain points a series) are about 1%.
SERIES=200
POINTS=$(n 20000)

print_machine
echo "old build: $OLD ($("$OLD" --version))"
echo "new build: $NEW ($("$NEW" --version)), $(git -C "$ROOT" rev-parse --short HEAD)"

# with BINARY CMD...: runs CMD with start_metricsd starting BINARY.
with() { local METRICSD=$1; shift; "$@"; }
# stat_figure NAME: one figure of the `stats` answer of the server at MADDR,
# or nothing if it has no such figure.
stat_figure() { "$METRICSCTL" --addr "$MADDR" stats --raw | awk -v name="$1" '$1 == name { print $2 }'; }
# section N: whether section N runs.
section() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
ratio() { echo "scale=2; $1 / $2" | bc; }
per_point() { echo "scale=2; $1 / $2" | bc; }

section 1 && {
echo "== 1. memory: bytes per point, $SERIES series x $POINTS points (RSS grown by the ingest / points)"
memory_run() { # $1 = label, $2 = workload; prints one line for the build start_metricsd starts
  start_metricsd "$WORK/mem.log" --in-memory
  local before after chunk points
  before=$(rss_kib "$MPID")
  bench --allow-durable --addr "$MADDR" --workload "$2" --key-prefix mix. --keys $SERIES --connections 4 --pipeline 16 \
    --requests $((SERIES * POINTS)) >/dev/null
  after=$(rss_kib "$MPID")
  points=$(stat_figure points)
  chunk=$(stat_figure store.chunk_bytes)
  stop_metricsd
  printf '%s %-18s %s points: %s B RSS/point' "$1" "$2" "$points" "$(per_point $(((after - before) * 1024)) "$points")"
  [ -n "$chunk" ] && printf ', %s B chunk bytes/point' "$(per_point "$chunk" "$points")"
  echo
}
for workload in mix:counter mix:int_gauge mix:decimal_gauge mix:flag mix:float mix; do
  with "$OLD" memory_run old "$workload"
  with "$NEW" memory_run new "$workload"
done

}
section 2 && {
echo "== 2. disk: bytes per point of the data directory after a compaction ($SERIES series x $POINTS points of the mix)"
disk_run() { # $1 = label
  local dir=$WORK/disk-$1
  # No compaction while ingesting: the log alone, then one compaction.
  start_metricsd "$WORK/disk.log" --data-dir "$dir" --fsync never --compact-min-bytes 1TiB
  bench --allow-durable --addr "$MADDR" --workload mix --key-prefix mix. --keys $SERIES --connections 4 --pipeline 16 \
    --requests $((SERIES * POINTS)) >/dev/null
  local points
  points=$(stat_figure points)
  stop_metricsd
  local logged
  logged=$(du -sb "$dir" | cut -f1)
  # Any log is over this floor: a compaction begins at start.
  start_metricsd "$WORK/disk.log" --data-dir "$dir" --fsync never --compact-min-bytes 1
  for _ in $(seq 600); do [ "$(stat_figure log.compactions)" -ge 1 ] && break; sleep 0.1; done
  [ "$(stat_figure log.compactions)" -ge 1 ] || { echo "$1: no compaction within 60 s" >&2; exit 1; }
  stop_metricsd
  local size snapshot
  size=$(du -sb "$dir" | cut -f1)
  snapshot=$(cat "$dir"/snapshot-* | wc -c)
  echo "$1: $points points; the log alone $(per_point "$logged" "$points") B/point;" \
    "after: $(per_point "$size" "$points") B/point, the snapshot alone $(per_point "$snapshot" "$points")" \
    "($(ls "$dir" | grep -v LOCK | tr '\n' ' '))"
}
with "$OLD" disk_run old
with "$NEW" disk_run new

}
section 3 && {
echo "== 3. ingest, 50 connections, pipeline 16, in memory (rounds alternating; medians)"
# On 2 cores the client often saturates first: the server's CPU time per
# put (user + system) is printed beside the rate.
ingest_rps() { # $1 = workload; "requests/s cpu_us_per_put" of one run on a fresh server
  start_metricsd "$WORK/ingest.log" --in-memory
  local keys=1000 r requests t0 t1
  requests=$(n 2000000)
  t0=$(cpu_ticks "$MPID")
  r=$(bench --allow-durable --addr "$MADDR" --workload "$1" --key-prefix mix. --keys $keys --connections 50 --pipeline 16 \
    --requests "$requests" | jfield throughput_rps | cut -d. -f1)
  t1=$(cpu_ticks "$MPID")
  stop_metricsd
  echo "$r $(echo "scale=3; ($t1 - $t0) * $TICK_US / $requests" | bc)"
}
for workload in put mix; do
  : >"$WORK/old.rps"; : >"$WORK/new.rps"
  for round in 1 2 3; do
    with "$OLD" ingest_rps $workload >>"$WORK/old.rps"
    with "$NEW" ingest_rps $workload >>"$WORK/new.rps"
  done
  o=$(cut -d' ' -f1 "$WORK/old.rps" | median); w=$(cut -d' ' -f1 "$WORK/new.rps" | median)
  oc=$(cut -d' ' -f2 "$WORK/old.rps" | median); wc=$(cut -d' ' -f2 "$WORK/new.rps" | median)
  echo "$workload: old $o/s [$(cut -d' ' -f1 "$WORK/old.rps" | tr '\n' ' ')], new $w/s [$(cut -d' ' -f1 "$WORK/new.rps" | tr '\n' ' ')], new/old $(ratio "$w" "$o")"
  echo "$workload: server CPU per put, old $oc us, new $wc us, new/old $(ratio "$wc" "$oc")"
done

}
section 4 && {
echo "== 4. server CPU per get of a 100-point series (1000 keys, 50 connections, pipeline 16; rounds alternating; medians)"
# utime and stime of a process, in clock ticks.
user_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12}'; }
# cpu_per KEYS POINTS WORKLOAD: prints "user_us system_us" of the server
# per request of WORKLOAD over KEYS keys of POINTS points, on a fresh server.
cpu_per() {
  start_metricsd "$WORK/cpu.log" --in-memory
  "$BENCH" --allow-durable --addr "$MADDR" --workload get --keys "$1" --points "$2" --requests 100 >/dev/null # preload
  local requests u0 t0 u1 t1
  requests=$(n 200000)
  u0=$(user_ticks "$MPID"); t0=$(cpu_ticks "$MPID")
  bench --allow-durable --addr "$MADDR" --workload "$3" --keys "$1" --points "$2" --no-preload --connections 50 --pipeline 16 \
    --requests "$requests" >/dev/null
  u1=$(user_ticks "$MPID"); t1=$(cpu_ticks "$MPID")
  stop_metricsd
  echo "$(echo "scale=2; ($u1 - $u0) * $TICK_US / $requests" | bc)" \
    "$(echo "scale=2; (($t1 - $t0) - ($u1 - $u0)) * $TICK_US / $requests" | bc)"
}
get_cpu() { cpu_per 1000 100 get; }
: >"$WORK/old.cpu"; : >"$WORK/new.cpu"
for round in 1 2 3; do
  with "$OLD" get_cpu >>"$WORK/old.cpu"
  with "$NEW" get_cpu >>"$WORK/new.cpu"
done
ou=$(cut -d' ' -f1 "$WORK/old.cpu" | median); os=$(cut -d' ' -f2 "$WORK/old.cpu" | median)
nu=$(cut -d' ' -f1 "$WORK/new.cpu" | median); ns=$(cut -d' ' -f2 "$WORK/new.cpu" | median)
echo "old: $ou us user + $os us system per get; new: $nu us user + $ns us system; user new/old $(ratio "$nu" "$ou")"
# A 100-point series is all head (plain points, under a chunk's 240): the
# same 100 points read out of sealed chunks, as a range of longer series.
range_cpu() { cpu_per 100 2400 range:100; }
: >"$WORK/range.cpu"
for round in 1 2 3; do with "$NEW" range_cpu >>"$WORK/range.cpu"; done
echo "new, range of 100 points out of sealed chunks (100 keys of 2,400 points): $(cut -d' ' -f1 "$WORK/range.cpu" | median) us user" \
  "+ $(cut -d' ' -f2 "$WORK/range.cpu" | median) us system per range"

}
section 5 && {
echo "== 5. range of 1 h over a 30-day series (259,200 points, one key, one connection)"
lat() { jfield "$1" | cut -d. -f1; } # a latency field, whole microseconds
range_run() { # $1 = label; $2 = 1 for the range too
  start_metricsd "$WORK/range.log" --in-memory
  local out
  out=$(bench --allow-durable --addr "$MADDR" --workload get --keys 1 --points 259200 --connections 1 --requests "$(n 100)")
  echo "$1 get of the whole series: p50 $(echo "$out" | lat p50) us, p99 $(echo "$out" | lat p99) us"
  if [ "$2" = 1 ]; then
    out=$(bench --allow-durable --addr "$MADDR" --workload range:360 --keys 1 --points 259200 --no-preload --connections 1 \
      --requests "$(n 20000)")
    echo "$1 range of 1 h (360 points): p50 $(echo "$out" | lat p50) us, p99 $(echo "$out" | lat p99) us"
  fi
  stop_metricsd
}
with "$OLD" range_run old 0
with "$NEW" range_run new 1
}

#!/usr/bin/env bash
# Two builds of metricsd, before and after a change, measured by the same
# client (this tree's metricsd-bench), as quoted in BENCHMARKS.md ("Before
# and after a change"). Three cases, 50 connections, 1,000 keys:
#   put-P1    in-order puts, pipeline 1, 200,000 requests
#   put-P16   the same at pipeline 16, 2,000,000 requests
#   get-100   gets of 100-point series (50 keys), 100,000 requests; the
#             points are stored by a first run and are not counted
# Every case runs on a fresh server (same state for both builds), in rounds
# that alternate which build goes first. Around every measured run the
# server's CPU time (utime + stime from /proc/PID/stat) is read, so the
# table gives throughput and server CPU per request; each ratio (new/old)
# is taken within a round, and the median of the rounds is reported,
# because the machine is noisy.
#
# Talks only to 127.0.0.1; every run is bounded in requests and stops itself.
# Usage: scripts/compare-builds.sh OLD_METRICSD NEW_METRICSD [ROUNDS]
#   ROUNDS: 3 to 15, default 5. Installs bc with apt-get if it is missing.
#   SERVER_ARGS="--in-memory" (the default) is how both servers are started;
#   without --in-memory (say SERVER_ARGS="--fsync everysec") a fresh data
#   directory is added for every run.
#   SCALE=N divides every request count by N (a quick check that the script
#   runs; figures are taken with SCALE=1).
# For example, with the build before the change in a worktree of its own:
#   git worktree add ../metricsd-before <commit before the change>
#   (cd ../metricsd-before && cargo build --release --bin metricsd)
#   cargo build --release --bin metricsd
#   scripts/compare-builds.sh ../metricsd-before/target/release/metricsd target/release/metricsd
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 OLD_METRICSD NEW_METRICSD [ROUNDS] (see the comment at its top)" >&2; exit 2; }
OLD=$(realpath "$1")
NEW=$(realpath "$2")
ROUNDS=${3:-5}
for bin in "$OLD" "$NEW"; do [ -x "$bin" ] || { echo "not an executable: $bin" >&2; exit 2; }; done
[[ $ROUNDS =~ ^[0-9]+$ ]] && [ "$ROUNDS" -ge 3 ] && [ "$ROUNDS" -le 15 ] ||
  { echo "ROUNDS must be 3 to 15, not $ROUNDS" >&2; exit 2; }
NEEDS=bc
source "$(dirname "$0")/common.sh"
SCALE=${SCALE:-1}
SERVER_ARGS=${SERVER_ARGS:---in-memory}
n() { echo $(($1 / SCALE)); }

RESULTS=$WORK/results # lines: case round build rps server_us_per_req server_ticks
# run_case CASE ROUND BUILD BINARY BENCH-ARGS...: a fresh server of BINARY,
# the preload of a get run, then one measured run.
run_case() {
  local case=$1 round=$2 build=$3 binary=$4; shift 4
  local args=($SERVER_ARGS) before after requests
  [[ " $SERVER_ARGS " == *" --in-memory "* ]] || args+=(--data-dir "$WORK/data-$case-$round-$build")
  METRICSD=$binary start_metricsd "$WORK/$build.log" "${args[@]}"
  if [[ " $* " == *" --workload get "* ]]; then
    bench --allow-durable --addr "$MADDR" "$@" --requests 1 >/dev/null # stores the points
  fi
  before=$(cpu_ticks "$MPID")
  bench --allow-durable --addr "$MADDR" --no-preload "$@" >"$WORK/bench.out"
  after=$(cpu_ticks "$MPID")
  stop_metricsd
  requests=$(jfield requests <"$WORK/bench.out")
  echo "$case $round $build $(jfield throughput_rps <"$WORK/bench.out") $(echo "scale=3; ($after - $before) * $TICK_US / $requests" | bc) $((after - before))" >>"$RESULTS"
}

print_machine
echo "old: $OLD"
echo "new: $NEW"
echo "rounds: $ROUNDS; server: metricsd $SERVER_ARGS; metricsd-bench: one thread, closed loop; CPU in clock ticks of $TICK_US us"
: >"$RESULTS"
for round in $(seq "$ROUNDS"); do
  builds=(old new)
  ((round % 2)) || builds=(new old)
  for build in "${builds[@]}"; do
    if [ $build = old ]; then binary=$OLD; else binary=$NEW; fi
    run_case put-P1 $round $build "$binary" --connections 50 --pipeline 1 --requests $(n 200000)
    run_case put-P16 $round $build "$binary" --connections 50 --pipeline 16 --requests $(n 2000000)
    run_case get-100 $round $build "$binary" --connections 50 --pipeline 1 --requests $(n 100000) \
      --workload get --points 100 --keys 50
  done
  echo "round $round done"
done

echo "== raw results (case round build rps server_cpu_us_per_req server_cpu_ticks)"
cat "$RESULTS"
awk '$6 < 30 {short++} END {if (short) printf "note: %d runs took under 30 clock ticks of server CPU: their CPU figures are coarse\n", short}' "$RESULTS"
# ratios: A/B of each line "A B" (nan where B is 0: a run too short to
# take a clock tick of CPU, as with a large SCALE).
ratios() { awk '{if ($2 > 0) printf "%.4f\n", $1 / $2; else print "nan"}'; }
# per_round CASE BUILD COLUMN: that column's value in each round, in round order.
per_round() { awk -v c="$1" -v b="$2" -v k="$3" '$1==c && $3==b {print $2, $k}' "$RESULTS" | sort -n | cut -d' ' -f2; }
ratio_median() { paste -d' ' <(per_round "$1" new "$2") <(per_round "$1" old "$2") | ratios | median; }
med() { per_round "$1" "$2" "$3" | median; }

echo
echo "== medians of $ROUNDS rounds (ratios are per round, new / old, then the median)"
echo '| case | old req/s | new req/s | throughput new/old | old CPU µs/req | new CPU µs/req | CPU new/old |'
echo '| --- | --- | --- | --- | --- | --- | --- |'
for case in put-P1 put-P16 get-100; do
  printf '| %s | %.0f | %.0f | **%.3f×** | %.3f | %.3f | **%.3f×** |\n' "$case" "$(med $case old 4)" "$(med $case new 4)" \
    "$(ratio_median $case 4)" "$(med $case old 5)" "$(med $case new 5)" "$(ratio_median $case 5)"
done

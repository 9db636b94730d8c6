#!/usr/bin/env bash
# Instructions the server executes per request (valgrind's callgrind), for
# the loads of scripts/compare-redis.sh: put at pipeline 1 and 16, and a get
# of a 100-point series (all in the open head); puts that fill heads and
# seal them into chunks (1,000 points a key: the short put loads never
# fill one); and reads out of sealed chunks: a range of 100 points of
# 2,400-point series, and a get of a 30-day series (259,200 points). Instruction counts, unlike times, repeat from run
# to run on a shared machine, so they show what a change to the hot path
# buys. Kernel work (syscalls) is not counted: see `strace -c` in
# scripts/core-figures.sh for that.
#
# Instrumentation is switched on only around the measured load (after start-up and
# the preload) and off before the stop. Prints instructions per request and
# the top functions; the callgrind files stay in target/profile/
# for callgrind_annotate.
# Usage: scripts/profile.sh   (installs valgrind and bc with apt-get if
# missing). SCALE=N divides the request counts by N (a quick check that the
# script runs); METRICSD=path profiles another build (an earlier commit's)
# with the same load (the bench is told --allow-durable: an older build's
# `stats` may not say it is in memory, and this script starts it so).
NEEDS="valgrind bc"
source "$(dirname "$0")/common.sh"
SCALE=${SCALE:-1}
# The very binary the other scripts measure: release, symbols but no line
# tables, so that callgrind_annotate sums each function whole instead of
# splitting it by the files its inlined code came from.
BIN=${METRICSD:-$ROOT/target/release/metricsd}
OUT=$ROOT/target/profile
mkdir -p "$OUT"

# profile NAME REQUESTS BENCH-ARGS...: a get load's points are stored
# (metricsd-bench's preload) before the instrumentation is switched on.
profile() {
  local name=$1 n=$(($2 / SCALE)); shift 2
  local log=$WORK/$name.log
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.$name" \
    "$BIN" --listen 127.0.0.1:0 --in-memory >"$log" 2>&1 &
  local pid=$!; PIDS+=($pid)
  local addr
  addr=$(wait_listening "$log" 3000) # valgrind starts slowly
  # The preload with one request, then the load alone.
  bench --allow-durable --addr "$addr" --requests 1 --timeout 300 "$@" >/dev/null
  callgrind_control -i on $pid >/dev/null
  bench --allow-durable --addr "$addr" --requests "$n" --timeout 600 --no-preload "$@" >/dev/null
  callgrind_control -i off $pid >/dev/null
  kill -TERM $pid; wait $pid || true
  local total
  total=$(callgrind_annotate "$OUT/callgrind.$name" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",", "", $1); print $1}')
  echo "== $name: $total instructions for $n requests = $(echo "scale=1; $total / $n" | bc) per request"
  # Lines "N (P%)  file:function [object]" after the file:function header;
  # the object and the unknown file "???:" are dropped.
  callgrind_annotate "$OUT/callgrind.$name" 2>/dev/null |
    awk '/file:function/{on=1; next} on && /%\)/' | head -15 |
    sed -E 's/^ *([0-9,]+) \( *([0-9.]+)%\) +(\?\?\?:)?/\2% \1 /; s/ \[[^]]*\]$//' |
    awk '{ir=$2; gsub(",", "", ir); $2=sprintf("%.1f/req", ir / n); print "  " $0}' n="$n" | cut -c1-150
}

profile put-P1 20000 --connections 50 --pipeline 1
profile put-P16 100000 --connections 50 --pipeline 16
profile put-P16-sealing 1000000 --connections 50 --pipeline 16 --keys 1000
profile get-100 5000 --connections 50 --pipeline 1 --workload get --points 100 --keys 50
profile range-100-sealed 2000 --connections 50 --pipeline 1 --workload range:100 --points 2400 --keys 100
profile get-30d 6 --connections 1 --pipeline 1 --workload get --points 259200 --keys 1

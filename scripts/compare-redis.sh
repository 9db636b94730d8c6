#!/usr/bin/env bash
# metricsd against Redis 7, as quoted in BENCHMARKS.md ("Comparison with
# Redis"). One client, metricsd-bench, drives both servers with the same
# load (`--server redis` speaks RESP: put is RPUSH, get is LRANGE), in
# rounds that alternate which server goes first; each server's CPU time
# (utime + stime from /proc/PID/stat) is read before and after every run,
# so the table gives throughput and server CPU per request. Medians of the
# rounds are reported, because this is a noisy shared 2-core machine.
#
# Cases (50 connections, 1,000 keys unless said):
#   put P1, put P16   metricsd put of in-order points (each key put by one
#                     connection) against RPUSH of the same points
#   get-100           get of 100-point series (50 keys) against LRANGE of
#                     lists of the same 100 points
#   memory            RSS growth per point after 5M in-order points over
#                     1,000 keys, on both servers
#   10k connections   put P1 with 10,000 connections against 50 (both
#                     metricsd, 10,000 keys)
#
# Talks only to 127.0.0.1; every run is bounded in requests and stops itself.
# Usage: scripts/compare-redis.sh [ROUNDS]   (1 to 10, default 5; installs
# redis-server, strace and bc with apt-get if they are missing)
# CASES="put get conns memory" (any of them; default all) runs some.
# SCALE=N divides every request count by N (a quick check that the script
# runs; the figures of BENCHMARKS.md are taken with SCALE=1).
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-5}
CASES=${CASES:-put get conns memory}
SCALE=${SCALE:-1}
want() { [[ " $CASES " == *" $1 "* ]]; }
n() { echo $(($1 / SCALE)); }
# metricsd-bench opens 10,000 sockets itself; metricsd raises its own limit.
ulimit -n 20000

RESULTS=$WORK/results # lines: case round server rps server_us_per_req client_us_per_req
# measure CASE ROUND SERVER PID BENCH-ARGS...: one metricsd-bench run, its
# rate, the server's CPU per request and the client's own (the client
# shares the machine: when it is the busier of the two, it bounds the
# rate). Both CPU figures include the run's preload, if any (5,000 points
# for get-100, against 100,000 gets of 100 points each).
measure() {
  local case=$1 round=$2 server=$3 pid=$4; shift 4
  local before after out n client
  before=$(cpu_ticks "$pid")
  out=$( { TIMEFORMAT='%U %S'; time bench --server "$server" "$@" >"$WORK/bench.out"; } 2>&1 )
  after=$(cpu_ticks "$pid")
  n=$(jfield requests <"$WORK/bench.out")
  client=$(echo "$out" | tail -1 | awk -v n="$n" '{printf "%.3f", ($1 + $2) * 1e6 / n}')
  echo "$case $round $server $(jfield throughput_rps <"$WORK/bench.out") $(echo "scale=3; ($after - $before) * $TICK_US / $n" | bc) $client" >>"$RESULTS"
}

print_machine
echo "rounds: $ROUNDS; metricsd-bench: one thread, closed loop; CPU in clock ticks of $TICK_US us"

start_metricsd "$WORK/m.log" --in-memory
start_redis "$WORK/r.log"
: >"$RESULTS"

# Every put run takes timestamps above the last run's, so that metricsd
# appends points as Redis appends elements (a timestamp already stored
# would replace a value instead).
TS=1600000000
next_ts() { TS=$((TS + 10000000)); }
# The get case reads its own keys, which no put run changes.
GET=(--workload get --points 100 --keys 50 --key-prefix get.k)

for round in $(seq "$ROUNDS"); do
  servers=(metricsd redis)
  ((round % 2)) || servers=(redis metricsd)
  for s in "${servers[@]}"; do
    if [ $s = metricsd ]; then pid=$MPID addr=$MADDR; else pid=$RPID addr=$RADDR; fi
    if want put; then
      next_ts
      measure put-P1 $round $s $pid --addr $addr --connections 50 --pipeline 1 --requests $(n 200000) --timestamp-base $TS
      next_ts
      measure put-P16 $round $s $pid --addr $addr --connections 50 --pipeline 16 --requests $(n 2000000) --timestamp-base $TS
    fi
    if want get; then
      measure get-100 $round $s $pid --addr $addr --connections 50 --pipeline 1 --requests $(n 100000) "${GET[@]}"
    fi
    if want conns && [ $s = metricsd ]; then
      next_ts
      measure put-P1-10k $round $s $pid --addr $addr --connections 10000 --keys 10000 --key-prefix conns.k --requests $(n 1000000) --timestamp-base $TS
      next_ts
      measure put-P1-50 $round $s $pid --addr $addr --connections 50 --keys 10000 --key-prefix conns.k --requests $(n 1000000) --timestamp-base $TS
    fi
  done
  echo "round $round done"
done
stop_metricsd
stop_redis

M_BPP=- R_BPP=-
if want memory; then
  echo "== memory (fresh servers)"
  # memory_per_point SERVER PID ADDR: one point per key over 1,000
  # connections first, so that per-key and per-connection costs are paid
  # before the baseline; then 5M in-order points over the same keys.
  memory_per_point() {
    local before after
    bench --server "$1" --addr "$3" --connections 1000 --keys 1000 --pipeline 16 --requests 1000 >/dev/null
    before=$(rss_kib "$2")
    bench --server "$1" --addr "$3" --connections 1000 --keys 1000 --pipeline 16 --requests $(n 5000000) \
      --timestamp-base 1700000000 >/dev/null
    after=$(rss_kib "$2")
    echo "$1: RSS $before KiB -> $after KiB" >&2
    echo "scale=2; ($after - $before) * 1024 / $(n 5000000)" | bc
  }
  start_metricsd "$WORK/m.log" --in-memory
  M_BPP=$(memory_per_point metricsd $MPID $MADDR)
  stop_metricsd
  start_redis "$WORK/r.log"
  R_BPP=$(memory_per_point redis $RPID $RADDR)
  stop_redis
  echo "bytes per point: metricsd $M_BPP, redis $R_BPP (list elements \"<value> <timestamp>\")"
fi

echo "== raw results (case round server rps server_cpu_us_per_req client_cpu_us_per_req)"
cat "$RESULTS"
# ratios: A/B of each line "A B" (nan where B is 0: a run too short to
# take a clock tick of CPU, as with a large SCALE).
ratios() { awk '{if ($2 > 0) printf "%.4f\n", $1 / $2; else print "nan"}'; }
# per_round CASE SERVER COLUMN: that column's value in each round, in round order.
per_round() { awk -v c="$1" -v s="$2" -v k="$3" '$1==c && $3==s {print $2, $k}' "$RESULTS" | sort -n | cut -d' ' -f2; }
ratio_median() { paste -d' ' <(per_round "$1" "$2" "$5") <(per_round "$3" "$4" "$5") | ratios | median; }
med() { per_round "$1" "$2" "$3" | median; }

echo
echo "== medians of $ROUNDS rounds (ratios are per round, metricsd / peer, then the median)"
printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' case "metricsd req/s" "peer req/s" "throughput ratio" \
  "metricsd CPU µs/req" "peer CPU µs/req" "CPU ratio" target
echo '| --- | --- | --- | --- | --- | --- | --- | --- |'
row() { # CASE PEER-CASE PEER-SERVER LABEL TARGET
  grep -q "^$1 " "$RESULTS" || return 0
  printf '| %s | %.0f | %.0f | **%.2f×** | %.3f | %.3f | %.2f× | %s |\n' "$4" "$(med "$1" metricsd 4)" "$(med "$2" "$3" 4)" \
    "$(ratio_median "$1" metricsd "$2" "$3" 4)" "$(med "$1" metricsd 5)" "$(med "$2" "$3" 5)" \
    "$(ratio_median "$1" metricsd "$2" "$3" 5)" "$5"
}
row put-P1 put-P1 redis "put vs RPUSH, pipeline 1" "throughput ≥ 1.1×"
row put-P16 put-P16 redis "put vs RPUSH, pipeline 16" "throughput ≥ 2×, CPU ≤ 0.5×"
row get-100 get-100 redis "get 100 points vs LRANGE 0 -1 of 100" "throughput ≥ 1.5×"
row put-P1-10k put-P1-50 metricsd "put P1, 10,000 vs 50 connections (both metricsd)" "throughput ≥ 0.5×"
want memory && echo "| memory | $M_BPP bytes/point | $R_BPP bytes/point (RPUSH) | | | | | ≤ 20 bytes/point |"
echo
echo "client (metricsd-bench) CPU µs/req, medians: $(for c in put-P1 put-P16 get-100; do
  grep -q "^$c " "$RESULTS" || continue
  echo -n "$c metricsd $(med $c metricsd 6) redis $(med $c redis 6); "; done)"

#!/usr/bin/env bash
# metricsd against Redis 7, as quoted in BENCHMARKS.md ("Comparison with
# Redis"). The same loadmeter commands drive both servers, in rounds that
# alternate which server goes first; each server's CPU time (utime + stime
# from /proc/PID/stat) is read before and after every run, so the table
# gives throughput and server CPU per request. Medians of the rounds are
# reported, because this is a noisy shared 2-core machine.
#
# Cases (50 connections unless said):
#   put P1, put P16   metricsd `put k{c} 1.5 {t}` (in-order points of 50
#                     series) against Redis SET of distinct keys
#   get-100           `get` of one 100-point series against LRANGE 0 99 of
#                     a 100-element list holding the same text lines
#   memory            RSS growth per point after 5M in-order points over
#                     1000 keys; Redis bytes per key after 5M SETs (context)
#   10k connections   put P1 with 10,000 connections against 50
#
# Talks only to 127.0.0.1; every run is bounded in requests and stops itself.
# Usage: scripts/compare-redis.sh [ROUNDS]   (1 to 10, default 5; installs
# redis-server, strace and bc with apt-get if they are missing)
# CASES="put get" (any of put, get, conns, memory; default all) runs some.
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-5}
CASES=${CASES:-put get conns memory}
want() { [[ " $CASES " == *" $1 "* ]]; }
# loadmeter opens 10,000 sockets itself; metricsd raises its own limit.
ulimit -n 20000
TICK_US=$((1000000 / $(getconf CLK_TCK)))
field() { grep -o "$1=[0-9.]*" | cut -d= -f2; }
# utime + stime in clock ticks, all threads. The comm field may hold
# spaces: count fields after its closing parenthesis (utime is field 14).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }

RESULTS=$WORK/results # lines: case round server rps server_us_per_req client_us_per_req
# measure CASE ROUND SERVER PID LOADMETER-ARGS...: one loadmeter run, its
# rate, the server's CPU per request and loadmeter's own (the client shares
# the machine: when it is the busier of the two, it bounds the rate).
measure() {
  local case=$1 round=$2 server=$3 pid=$4; shift 4
  local before after out n client
  before=$(cpu_ticks "$pid")
  out=$( { TIMEFORMAT='%U %S'; time "$LM" "$@" >"$WORK/lm.out"; } 2>&1 )
  after=$(cpu_ticks "$pid")
  n=$(field requests <"$WORK/lm.out")
  client=$(echo "$out" | tail -1 | awk -v n="$n" '{printf "%.3f", ($1 + $2) * 1e6 / n}')
  echo "$case $round $server $(field rps <"$WORK/lm.out") $(echo "scale=3; ($after - $before) * $TICK_US / $n" | bc) $client" >>"$RESULTS"
}

print_machine
echo "rounds: $ROUNDS; loadmeter: one thread, closed loop; CPU in clock ticks of $TICK_US us"

start_metricsd "$WORK/m.log" --in-memory
RPORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no >"$WORK/r.log" 2>&1 &
RPID=$!; PIDS+=($RPID)
for _ in $(seq 500); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.01; done
RADDR=127.0.0.1:$RPORT

# get-100: one key read by every connection (--reply is one fixed answer,
# and a metricsd answer names its key), 100 points of varied values.
KEY=host7.cpu.user
"$LM" --addr "$MADDR" --conns 1 --requests 100 --template "put $KEY {i}.37 {t}\n" --reply 'ok\n\n' >/dev/null
GET_REPLY='ok\n'
LRANGE_REPLY='*100\r\n'
ELEMENTS=()
for i in $(seq 0 99); do
  line="$KEY $i.37 $((1600000000 + i))"
  ELEMENTS+=("$line")
  GET_REPLY+="$line\\n"
  LRANGE_REPLY+="\$${#line}\\r\\n$line\\r\\n"
done
GET_REPLY+='\n'
redis-cli -p "$RPORT" rpush "$KEY" "${ELEMENTS[@]}" >/dev/null
LRANGE="*4\\r\\n\$6\\r\\nLRANGE\\r\\n\$${#KEY}\\r\\n$KEY\\r\\n\$1\\r\\n0\\r\\n\$2\\r\\n99\\r\\n"

PUT='put k{c} 1.5 {t}\n'
# 14-byte keys; the first letter changes every round, so every SET stores
# a new key as every put stores a new point.
set_template() { echo "*3\\r\\n\$3\\r\\nSET\\r\\n\$14\\r\\n$1:{c:3}:{i:8}\\r\\n\$3\\r\\n1.5\\r\\n"; }
TS=1600000000 # every metricsd run gets timestamps above the last run's
next_ts() { TS=$((TS + 10000000)); }

for round in $(seq "$ROUNDS"); do
  letter=$(echo abcdefghij | cut -c"$round")
  servers=(metricsd redis)
  ((round % 2)) || servers=(redis metricsd)
  for s in "${servers[@]}"; do
    if [ $s = metricsd ]; then
      if want put; then
        next_ts
        measure put-P1 $round metricsd $MPID --addr "$MADDR" --conns 50 --pipeline 1 --requests 200000 --ts-base $TS --template "$PUT" --reply 'ok\n\n'
        next_ts
        measure put-P16 $round metricsd $MPID --addr "$MADDR" --conns 50 --pipeline 16 --requests 2000000 --ts-base $TS --template "$PUT" --reply 'ok\n\n'
      fi
      if want get; then
        measure get-100 $round metricsd $MPID --addr "$MADDR" --conns 50 --pipeline 1 --requests 100000 --template "get $KEY\n" --reply "$GET_REPLY"
      fi
      if want conns; then
        next_ts
        measure put-P1-10k $round metricsd $MPID --addr "$MADDR" --conns 10000 --pipeline 1 --requests 1000000 --ts-base $TS --template "$PUT" --reply 'ok\n\n'
        next_ts
        measure put-P1-50 $round metricsd $MPID --addr "$MADDR" --conns 50 --pipeline 1 --requests 1000000 --ts-base $TS --template "$PUT" --reply 'ok\n\n'
      fi
    else
      if want put; then
        measure put-P1 $round redis $RPID --addr "$RADDR" --conns 50 --pipeline 1 --requests 200000 --template "$(set_template "$letter")" --reply '+OK\r\n'
        measure put-P16 $round redis $RPID --addr "$RADDR" --conns 50 --pipeline 16 --requests 2000000 --template "$(set_template "$letter")" --reply '+OK\r\n'
      fi
      if want get; then
        measure get-100 $round redis $RPID --addr "$RADDR" --conns 50 --pipeline 1 --requests 100000 --template "$LRANGE" --reply "$LRANGE_REPLY"
      fi
    fi
  done
  echo "round $round done"
done
stop_metricsd
kill $RPID; wait $RPID || true

M_BPP=- R_BPK=-
if want memory; then
  echo "== memory (fresh servers)"
  start_metricsd "$WORK/m.log" --in-memory
  # One point per key first, so that per-key and per-connection costs are
  # paid before the baseline.
  "$LM" --addr "$MADDR" --conns 1000 --pipeline 16 --requests 1000 --template 'put k{c:4} 1.5 {t}\n' --reply 'ok\n\n' >/dev/null
  before=$(rss_kib $MPID)
  "$LM" --addr "$MADDR" --conns 1000 --pipeline 16 --requests 5000000 --ts-base 1600000001 \
    --template 'put k{c:4} 1.5 {t}\n' --reply 'ok\n\n' >/dev/null
  after=$(rss_kib $MPID)
  M_BPP=$(echo "scale=2; ($after - $before) * 1024 / 5000000" | bc)
  echo "metricsd: RSS $before KiB -> $after KiB, $M_BPP bytes per point"
  stop_metricsd
  redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no >"$WORK/r.log" 2>&1 &
  RPID=$!; PIDS+=($RPID)
  for _ in $(seq 500); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.01; done
  "$LM" --addr "$RADDR" --conns 1000 --pipeline 16 --requests 1000 --reply '+OK\r\n' --template "$(set_template w)" >/dev/null
  before=$(rss_kib $RPID)
  "$LM" --addr "$RADDR" --conns 1000 --pipeline 16 --requests 5000000 --reply '+OK\r\n' --template "$(set_template k)" >/dev/null
  after=$(rss_kib $RPID)
  R_BPK=$(echo "scale=2; ($after - $before) * 1024 / 5000000" | bc)
  echo "redis: RSS $before KiB -> $after KiB, $R_BPK bytes per key (SET of a 14-byte key, 3-byte value)"
  kill $RPID; wait $RPID || true
fi

echo "== raw results (case round server rps server_cpu_us_per_req client_cpu_us_per_req)"
cat "$RESULTS"
median() { sort -g | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
# per_round CASE SERVER COLUMN: that column's value in each round, in round order.
per_round() { awk -v c="$1" -v s="$2" -v k="$3" '$1==c && $3==s {print $2, $k}' "$RESULTS" | sort -n | cut -d' ' -f2; }
ratio_median() { paste -d' ' <(per_round "$1" "$2" "$5") <(per_round "$3" "$4" "$5") | awk '{printf "%.4f\n", $1/$2}' | median; }
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
row put-P1 put-P1 redis "put vs SET, pipeline 1" "throughput ≥ 1.1×"
row put-P16 put-P16 redis "put vs SET, pipeline 16" "throughput ≥ 2×, CPU ≤ 0.5×"
row get-100 get-100 redis "get 100 points vs LRANGE 0 99" "throughput ≥ 1.5×"
row put-P1-10k put-P1-50 metricsd "put P1, 10,000 vs 50 connections (both metricsd)" "throughput ≥ 0.5×"
want memory && echo "| memory | $M_BPP bytes/point | $R_BPK bytes/key (SET) | | | | | ≤ 20 bytes/point |"
echo
echo "client (loadmeter) CPU µs/req, medians: $(for c in put-P1 put-P16 get-100; do
  grep -q "^$c " "$RESULTS" || continue
  echo -n "$c metricsd $(med $c metricsd 6) redis $(med $c redis 6); "; done)"

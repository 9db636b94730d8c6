#!/usr/bin/env bash
# The core's figures, as quoted in BENCHMARKS.md:
#   1. RSS growth per stored point: 5M in-order points over 1000 keys.
#   2. Syscalls per request at pipeline depth 1 (strace -c): a closed loop of
#      50 connections, and one client that pauses between requests.
#   3. Put throughput against Redis RPUSH, same client (metricsd-bench),
#      same run, 50 connections, pipeline 1 and 16, rounds alternating
#      between servers.
# Talks only to 127.0.0.1; every run is bounded in requests and stops itself.
# Usage: scripts/core-figures.sh   (run from anywhere; installs redis-server,
# strace and bc with apt-get if they are missing)
# SCALE=N divides every request count by N (a quick check that the script
# runs; the figures of BENCHMARKS.md are taken with SCALE=1).
source "$(dirname "$0")/common.sh"
SCALE=${SCALE:-1}
n() { echo $(($1 / SCALE)); }

start_in_memory() { start_metricsd "$WORK/m.log" --in-memory; }

print_machine

echo "== 1. memory per point (5M in-order points, 1000 keys)"
start_in_memory
# One point per key first, so that per-key and per-connection costs are
# paid before the baseline. Each of the 1,000 connections puts to a key of
# its own, in order.
bench --addr "$MADDR" --connections 1000 --keys 1000 --pipeline 16 --requests 1000 >/dev/null
before=$(rss_kib $MPID)
bench --addr "$MADDR" --connections 1000 --keys 1000 --pipeline 16 --requests $(n 5000000) \
  --timestamp-base 1700000000 >/dev/null
after=$(rss_kib $MPID)
echo "rss_before_kib=$before rss_after_kib=$after bytes_per_point=$(echo "scale=2; ($after-$before)*1024/$(n 5000000)" | bc)"
kill $MPID

echo "== 2. syscalls per request, pipeline 1"
syscalls() { # $1 = label; runs "$2" as the load against MADDR
  start_in_memory
  strace -c -f -p $MPID -o "$WORK/strace" 2>/dev/null & local st=$!
  sleep 0.5
  eval "$2"
  sleep 0.2; kill -INT $st; wait $st 2>/dev/null || true; kill $MPID
  awk -v label="$1" -v n="$3" '$NF=="total"{printf "%s: %d syscalls for %d requests = %.2f per request\n", label, $4, n, $4/n}' "$WORK/strace"
}
syscalls "closed loop, 50 connections" \
  "bench --addr \$MADDR --connections 50 --requests $(n 100000) >/dev/null" $(n 100000)
syscalls "one client pausing 0.2 ms between requests" \
  "python3 -c \"
import socket, sys, time
h, p = sys.argv[1].rsplit(':', 1)
s = socket.create_connection((h, int(p)))
for i in range(int(sys.argv[2])):
    s.sendall(b'put k 1.5 %d\n' % i)
    d = b''
    while not d.endswith(b'\n\n'): d += s.recv(100)
    time.sleep(0.0002)
\" \$MADDR $(n 2000)" $(n 2000)

echo "== 3. put vs Redis RPUSH, 50 connections (metricsd-bench, same run)"
start_in_memory
start_redis "$WORK/r.log"
rps() { bench "$@" | jfield throughput_rps | cut -d. -f1; }
for P in 1 16; do
  N=$(n $((P == 1 ? 200000 : 1000000)))
  for round in 1 2 3; do
    # Timestamps above the last run's: every put a new point.
    ts=$((1600000000 + (P * 3 + round) * 10000000))
    m=$(rps --addr "$MADDR" --connections 50 --pipeline $P --requests $N --timestamp-base $ts)
    r=$(rps --server redis --addr "$RADDR" --connections 50 --pipeline $P --requests $N --timestamp-base $ts)
    echo "pipeline $P round $round: metricsd put $m/s, redis RPUSH $r/s, ratio $(echo "scale=2; $m/$r" | bc)"
  done
done
stop_metricsd; stop_redis

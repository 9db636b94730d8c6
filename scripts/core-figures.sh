#!/usr/bin/env bash
# The core's figures, as quoted in BENCHMARKS.md:
#   1. RSS growth per stored point: 5M in-order points over 1000 keys.
#   2. Syscalls per request at pipeline depth 1 (strace -c): a closed loop of
#      50 connections, and one client that pauses between requests.
#   3. Put throughput against Redis SET, same client (loadmeter), same run,
#      50 connections, pipeline 1 and 16, rounds alternating between servers.
# Talks only to 127.0.0.1; every run is bounded in requests and stops itself.
# Usage: scripts/core-figures.sh   (run from anywhere; installs redis-server,
# strace and bc with apt-get if they are missing)
source "$(dirname "$0")/common.sh"

start_in_memory() { start_metricsd "$WORK/m.log" --in-memory; }

print_machine

echo "== 1. memory per point (5M in-order points, 1000 keys)"
start_in_memory
# One point per key first, so that per-key and per-connection costs are
# paid before the baseline.
"$LM" --addr "$MADDR" --conns 1000 --pipeline 16 --requests 1000 --template 'put k{c:4} 1.5 {t}\n' --reply 'ok\n\n' >/dev/null
before=$(rss_kib $MPID)
"$LM" --addr "$MADDR" --conns 1000 --pipeline 16 --requests 5000000 --ts-base 1600000001 \
  --template 'put k{c:4} 1.5 {t}\n' --reply 'ok\n\n' >/dev/null
after=$(rss_kib $MPID)
echo "rss_before_kib=$before rss_after_kib=$after bytes_per_point=$(echo "scale=2; ($after-$before)*1024/5000000" | bc)"
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
  "\"$LM\" --addr \$MADDR --conns 50 --requests 100000 --template 'put k{c} 1.5 {t}\n' --reply 'ok\n\n' >/dev/null" 100000
syscalls "one client pausing 0.2 ms between requests" \
  "python3 -c \"
import socket, sys, time
h, p = sys.argv[1].rsplit(':', 1)
s = socket.create_connection((h, int(p)))
for i in range(2000):
    s.sendall(b'put k 1.5 %d\n' % i)
    d = b''
    while not d.endswith(b'\n\n'): d += s.recv(100)
    time.sleep(0.0002)
\" \$MADDR" 2000

echo "== 3. put vs Redis SET, 50 connections (loadmeter, same run)"
start_in_memory
RPORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no >"$WORK/r.log" 2>&1 &
PIDS+=($!)
sleep 0.5
for P in 1 16; do
  N=$((P == 1 ? 200000 : 1000000))
  for round in 1 2 3; do
    m=$("$LM" --addr "$MADDR" --conns 50 --pipeline $P --requests $N --template 'put k{c} 1.5 {t}\n' --reply 'ok\n\n' | grep -o 'rps=[0-9]*' | cut -d= -f2)
    r=$("$LM" --addr "127.0.0.1:$RPORT" --conns 50 --pipeline $P --requests $N --reply '+OK\r\n' \
      --template '*3\r\n$3\r\nSET\r\n$14\r\nk:{c:3}:{i:8}\r\n$3\r\n1.5\r\n' | grep -o 'rps=[0-9]*' | cut -d= -f2)
    echo "pipeline $P round $round: metricsd put $m/s, redis SET $r/s, ratio $(echo "scale=2; $m/$r" | bc)"
  done
done

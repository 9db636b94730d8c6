#!/usr/bin/env bash
# The memory of answers nobody reads, as quoted in BENCHMARKS.md: a store of
# 1M one-point series, then 300 connections that each send `get *` (16 MB
# of answer) and never read. Prints the server's RSS after loading and once
# its unsent output has stopped growing (or after 60 s), with the `stats`
# figures output.pending_bytes and output.memory_waits.
# Talks only to 127.0.0.1; bounded: 1M puts, 300 connections, at most 60 s
# of waiting, then everything is closed.
# Usage: scripts/output-memory.sh [extra metricsd flags]
#   METRICSD=path/to/metricsd runs another build (main's, for "before").
#   SERIES=N and CLIENTS=N change the sizes (a quick check that it runs).
NEEDS=python3
source "$(dirname "$0")/common.sh"
SERIES=${SERIES:-1000000}
CLIENTS=${CLIENTS:-300}
print_machine
start_metricsd "$WORK/m.log" --in-memory "$@"
python3 - "$MADDR" "$MPID" "$SERIES" "$CLIENTS" <<'PY'
import socket, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
pid, series, clients = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
addr = (host, int(port))

def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024

def read_answer(s, buf=b""):
    while b"\n\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("the server closed a connection")
        buf += chunk
    return buf

def stats(s):
    s.sendall(b"stats\n")
    answer = read_answer(s).decode()
    return dict(line.split(" ") for line in answer.split("\n")[1:] if " " in line)

# Load: one pipelined connection, answers read by a thread.
load = socket.create_connection(addr)
expect = 4 * series
def drain():
    got = 0
    while got < expect:
        chunk = load.recv(1 << 20)
        if not chunk:
            raise SystemExit("closed while loading")
        got += len(chunk)
reader = threading.Thread(target=drain)
reader.start()
batch = 10000
for start in range(0, series, batch):
    load.sendall("".join(f"put s.{i:07d} 1 1\n" for i in range(start, min(start + batch, series))).encode())
reader.join()
control = socket.create_connection(addr)
figures = stats(control)
print(f"loaded: {figures['series']} series, RSS {rss_mib()} MiB")

hogs = []
for _ in range(clients):
    hog = socket.create_connection(addr)
    hog.sendall(b"get *\n")
    hogs.append(hog)
# Until nothing moves for 3 s (the unsent output is the same and the
# sockets took less than 64 KiB: first the kernel's socket buffers fill,
# about 8 MB a connection, while the server holds nothing), at most 60 s.
last, still, start = None, 0, time.time()
while still < 6 and time.time() - start < 60:
    time.sleep(0.5)
    figures = stats(control)
    now = (int(figures["output.pending_bytes"]), int(figures["bytes.out"]))
    still = still + 1 if last and now[0] == last[0] and now[1] - last[1] < 65536 else 0
    last = now
figures = stats(control)
print(f"{clients} clients sent get * and do not read: RSS {rss_mib()} MiB, "
      f"output.pending_bytes {int(figures['output.pending_bytes']) // (1 << 20)} MiB, "
      f"output.memory_waits {figures.get('output.memory_waits', 'n/a')}, "
      f"settled after {time.time() - start:.1f} s")
for hog in hogs:
    hog.close()
PY
stop_metricsd

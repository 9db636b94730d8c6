"""Backfill latency: puts k at t=0..255, then t=10,000,000, then N points
going down from 9,999,999 (a gap filled newest first), all pipelined on one
connection, while a second connection measures its round trips.

Usage: python3 scripts/backfill-latency.py target/release/metricsd 150000
Starts the given server on 127.0.0.1:0 and kills it when done.
"""
import socket, subprocess, sys, time, threading, re
binary, n = sys.argv[1], int(sys.argv[2])
p = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--in-memory"], stderr=subprocess.PIPE, text=True)
addr = None
for line in p.stderr:
    m = re.match(r"listening on (.*):(\d+)", line.strip())
    if m: addr = (m.group(1), int(m.group(2))); break
threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
def rss():
    for l in open(f"/proc/{p.pid}/status"):
        if l.startswith("VmRSS"): return int(l.split()[1])
try:
    s = socket.create_connection(addr); s.settimeout(600)
    base = rss()
    reqs = "".join(f"put k 0.5 {t}\n" for t in range(256)) + "put k 0.5 10000000\n"
    reqs += "".join(f"put k 0.5 {t}\n" for t in range(9999999, 9999999 - n, -1))
    total = 257 + n
    probe = socket.create_connection(addr); probe.settimeout(600)
    worst = [0.0]; stop = [False]
    def prober():
        while not stop[0]:
            t0 = time.time(); probe.sendall(b"get none\n"); d = b""
            while len(d) < 4: d += probe.recv(64)
            worst[0] = max(worst[0], time.time() - t0); time.sleep(0.01)
    th = threading.Thread(target=prober); th.start()
    t0 = time.time()
    threading.Thread(target=lambda: s.sendall(reqs.encode()), daemon=True).start()
    got = 0
    while got < total * 4:
        got += len(s.recv(1 << 20))
    el = time.time() - t0
    stop[0] = True; th.join()
    print(f"{binary}: {n} backfilled puts in {el:.2f}s, worst other-client latency {worst[0]*1000:.0f} ms, RSS +{rss()-base} KiB")
finally:
    p.kill()

"""Measurements of scripts/cluster/bench.sh (loopback only, bounded).

  bench.py gen FILE POINTS KEYS
      writes POINTS Graphite lines `bench.kK VALUE TS` over KEYS keys, each
      point its own timestamp (so none replaces another).
  bench.py ingest FILE ADDR COURSE_ADDRS EXPECTED
      sends FILE to the Graphite port ADDR (a node's or the relay's) over 4
      connections at once, each a quarter of it in large writes (C speed:
      the sender is not what is measured), and polls the stats of every
      node in COURSE_ADDRS (comma separated) until together they hold
      EXPECTED points; prints "POINTS_PER_SECOND SECONDS" of the file's
      points, counted from the first write to the poll that saw them all
      (polls every 20 ms; 120 s at most).
  bench.py load GRAPHITE_ADDR COURSE_ADDRS SERIES SECONDS NOW EXPECTED
      sends SERIES series `bench.render.hH.cpuC` of a point every 10 s over
      the SECONDS before NOW, and waits until the nodes hold EXPECTED
      points in all.
  bench.py render HTTP_ADDR TARGET FROM UNTIL N
      asks /render?target=TARGET&from=FROM&until=UNTIL&format=json N times,
      each on a new connection (Django's development server, which runs
      graphite-web here, writes an answer's head and body apart: on a
      kept-alive connection Nagle and the client's delayed ACK then add
      40 ms to every answer); prints "p50_ms p90_ms max_ms bytes series".
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse


def points(addrs):
    """The points the servers at addrs (course ports) hold together, as
    lib.sh's stat_points counts them (through metricsctl)."""
    total = 0
    for addr in addrs:
        out = subprocess.run([os.environ['METRICSCTL'], '--addr', addr, 'stats', '--raw'],
                             check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, _, value = line.partition(' ')
            if name == 'points':
                total += int(value)
    return total


def wait_points(addrs, expected, deadline):
    while points(addrs) < expected:
        if time.monotonic() > deadline:
            sys.exit('the nodes hold %d of %d points' % (points(addrs), expected))
        time.sleep(0.02)


def gen(path, n, keys):
    with open(path, 'w') as f:
        for start in range(0, n, 100_000):
            f.write(''.join('bench.k%d %d.5 %d\n' % (i % keys, i % 1000, 1_600_000_000 + i)
                            for i in range(start, min(n, start + 100_000))))


def ingest(path, addr, addrs, expected):
    with open(path, 'rb') as f:
        data = f.read()
    sent = data.count(b'\n')
    # Four quarters, each cut after a whole line.
    cuts = [0]
    for q in (1, 2, 3):
        cuts.append(data.index(b'\n', len(data) * q // 4) + 1)
    cuts.append(len(data))
    host, port = addr.rsplit(':', 1)
    conns = [socket.create_connection((host, int(port)), timeout=60) for _ in range(4)]

    def send(i):
        view = memoryview(data)[cuts[i]:cuts[i + 1]]
        for at in range(0, len(view), 1 << 20):
            conns[i].sendall(view[at:at + (1 << 20)])
        conns[i].close()

    start = time.monotonic()
    threads = [threading.Thread(target=send, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_points(addrs, expected, start + 120)
    seconds = time.monotonic() - start
    print('%d %.3f' % (sent / seconds, seconds))


def load(graphite, addrs, series, seconds, now, expected):
    host, port = graphite.rsplit(':', 1)
    start = now - seconds
    with socket.create_connection((host, int(port)), timeout=30) as s:
        for k in range(series):
            s.sendall(''.join('bench.render.h%d.cpu%d %d.5 %d\n' % (k // 10, k % 10, (t // 10 + k) % 100, t)
                              for t in range(start, now, 10)).encode())
    wait_points(addrs, expected, time.monotonic() + 60)


def render(addr, target, frm, until, n):
    host, port = addr.rsplit(':', 1)
    path = '/render?' + urllib.parse.urlencode({'target': target, 'from': frm, 'until': until, 'format': 'json'})
    times, size, count = [], 0, 0
    for _ in range(n):
        start = time.perf_counter()
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request('GET', path, headers={'Connection': 'close'})
        answer = conn.getresponse()
        body = answer.read()
        times.append(time.perf_counter() - start)
        conn.close()
        if answer.status != 200:
            sys.exit('%s answered %d: %s' % (addr, answer.status, body[:200]))
        size, count = len(body), len(json.loads(body))
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] * 1000
    print('%.1f %.1f %.1f %d %d' % (pick(0.5), pick(0.9), times[-1] * 1000, size, count))


if __name__ == '__main__':
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == 'gen':
        gen(a[0], int(a[1]), int(a[2]))
    elif cmd == 'ingest':
        ingest(a[0], a[1], a[2].split(','), int(a[3]))
    elif cmd == 'load':
        load(a[0], a[1].split(','), int(a[2]), int(a[3]), int(a[4]), int(a[5]))
    elif cmd == 'render':
        render(a[0], a[1], a[2], a[3], int(a[4]))
    else:
        sys.exit(__doc__)

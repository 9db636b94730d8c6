#!/usr/bin/env python3
"""/render latency of issue 14: 100 series x 1 day at a 10 s interval
(864,000 points) stored through the course port, then the same /render
asked N times over one keep-alive HTTP connection, p50/p99/max printed.

Usage: scripts/render-latency.py COURSE_ADDR HTTP_ADDR [REQUESTS [MAX_DATA_POINTS]]
MAX_DATA_POINTS, as Grafana sends it (a panel's width in pixels), asks
the server to consolidate each series to at most that many points.
Talks only to the addresses given (loopback in scripts/render-latency.sh);
bounded: one load, REQUESTS renders (default 200), each with a 30 s timeout.
"""
import http.client
import socket
import sys
import time

SERIES, DAY, STEP = 100, 86_400, 10


def load(addr, now):
    host, port = addr.rsplit(":", 1)
    start = now - DAY
    with socket.create_connection((host, int(port)), timeout=30) as s:
        for k in range(SERIES):
            lines = "".join(
                f"put render.host{k // 10}.cpu{k % 10} {(t // STEP + k) % 100}.5 {t}\n"
                for t in range(start, now, STEP)
            ).encode()
            s.sendall(lines)
            want = b"ok\n\n" * (DAY // STEP)
            got = b""
            while len(got) < len(want):
                chunk = s.recv(1 << 20)
                if not chunk:
                    raise SystemExit("server closed the course connection")
                got += chunk
            if got != want:
                raise SystemExit(f"unexpected answers to the puts of series {k}")


def main():
    course, http_addr = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
    max_points = sys.argv[4] if len(sys.argv) > 4 else None
    now = int(time.time())
    load(course, now)
    host, port = http_addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    path = f"/render?target=render.*.*&from={now - DAY}&until={now}&format=json"
    if max_points:
        path += f"&maxDataPoints={max_points}"
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.perf_counter() - t0)
        if resp.status != 200:
            raise SystemExit(f"render answered {resp.status}: {body[:200]!r}")
        if i == 0:
            # Every series on its grid: 8,640 slots of 10 s.
            if body.count(b'"target"') != SERIES:
                raise SystemExit("render did not return 100 series")
    times.sort()
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000
    print(f"render of {SERIES} series x 1 day, maxDataPoints {max_points or 'unset'} "
          f"({len(body)} bytes of JSON), {n} requests: "
          f"p50 {q(0.50):.1f} ms, p99 {q(0.99):.1f} ms, max {times[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()

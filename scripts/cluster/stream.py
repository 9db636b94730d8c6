"""The generated stream of scripts/cluster/check.sh, and its verification.

Series `check.g<G>.s<S>` (G = S // 100), points every 10 s; phase k holds
points k*P .. k*P+P-1 of every series, and point i of series s has the value
s + i / 4 (exact in binary and in JSON, so a value read back is compared
exactly).

  stream.py send RELAY_PORT SERIES POINTS T0 PHASE [SECONDS]
      sends the phase's lines to carbon-c-relay, spread evenly over SECONDS
      (default: at once), writing the fraction sent so far to stdout.
  stream.py verify GRAPHITE_WEB SERIES POINTS T0 PHASES
      reads every series through graphite-web's /render (format=json, one
      glob per 100 series) over the first PHASES phases and prints one JSON
      line: points expected, missing, wrong, series absent, requests, seconds.
      Exit status 1 when graphite-web answers anything but 200.
"""
import json
import socket
import sys
import time
import urllib.parse
import urllib.request

STEP = 10
GROUP = 100


def name(s):
    return 'check.g%d.s%d' % (s // GROUP, s)


def value(s, i):
    return s + i / 4


def send(port, series, points, t0, phase, seconds=0.0):
    lines = [
        '%s %r %d\n' % (name(s), value(s, i), t0 + STEP * i)
        for i in range(phase * points, (phase + 1) * points)
        for s in range(series)
    ]
    batches = max(1, int(seconds * 20))
    per = -(-len(lines) // batches)
    start = time.monotonic()
    with socket.create_connection(('127.0.0.1', port), timeout=10) as conn:
        for b in range(batches):
            conn.sendall(''.join(lines[b * per:(b + 1) * per]).encode())
            print('%.2f' % ((b + 1) / batches), flush=True)
            # Paced, so that a node can be stopped while writes go on.
            delay = start + (b + 1) * seconds / batches - time.monotonic()
            if delay > 0:
                time.sleep(delay)


def verify(addr, series, points, t0, phases):
    total = phases * points
    until = t0 + STEP * (total - 1)
    expected = missing = wrong = absent = requests = 0
    start = time.monotonic()
    for g in range(-(-series // GROUP)):
        fields = {'target': 'check.g%d.*' % g, 'from': t0 - STEP, 'until': until,
                  'format': 'json', 'noCache': '1'}
        url = 'http://%s/render?%s' % (addr, urllib.parse.urlencode(fields))
        requests += 1
        with urllib.request.urlopen(url, timeout=30) as answer:
            if answer.status != 200:
                sys.exit('graphite-web answered %d to %s' % (answer.status, url))
            got = {s['target']: s['datapoints'] for s in json.load(answer)}
        for s in range(g * GROUP, min(series, (g + 1) * GROUP)):
            expected += total
            datapoints = got.get(name(s))
            if datapoints is None:
                absent += 1
                missing += total
                continue
            at = {ts: v for v, ts in datapoints}
            for i in range(total):
                v = at.get(t0 + STEP * i)
                if v is None:
                    missing += 1
                elif v != value(s, i):
                    wrong += 1
    print(json.dumps({'expected': expected, 'missing': missing, 'wrong': wrong, 'absent_series': absent,
                      'requests': requests, 'seconds': round(time.monotonic() - start, 2)}))


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'send':
        send(int(args[0]), int(args[1]), int(args[2]), int(args[3]), int(args[4]),
             float(args[5]) if len(args) > 5 else 0.0)
    elif cmd == 'verify':
        verify(args[0], int(args[1]), int(args[2]), int(args[3]), int(args[4]))
    else:
        sys.exit(__doc__)

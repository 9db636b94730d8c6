#!/usr/bin/env bash
# The page of `--http-listen` in a real browser: starts metricsd on
# loopback with the HTTP API, fills it with a day of realistic points (a
# daily cycle with noise, one point a minute, for a few hosts), opens the
# page in headless Chromium (Debian's `chromium`, installed if missing) with
# a series chosen through the URL fragment the page honours, and saves the
# screenshot as docs/screenshot.png (what README shows). Fails unless the
# PNG is a real picture of the chart: a PNG of the window's size, large
# enough to hold more than an empty page, small enough for the repository.
# Talks only to 127.0.0.1; bounded: 8,640 points, one page load.
# Usage: scripts/page-screenshot.sh [OUT.png]   (default docs/screenshot.png)
NEEDS="chromium python3"
source "$(dirname "$0")/common.sh"
OUT=${1:-$ROOT/docs/screenshot.png}
WIDTH=1100
HEIGHT=640
TARGET='servers.*.cpu'
cargo build --release -q --bin metricsctl
start_metricsd "$WORK/m.log" --in-memory --http-listen 127.0.0.1:0
HTTP=
for _ in $(seq 1000); do
  HTTP=$(grep -o 'HTTP API and page on http://[^/]*/' "$WORK/m.log" | head -1 | cut -d/ -f3) && [ -n "$HTTP" ] && break
  sleep 0.01
done
[ -n "$HTTP" ] || { echo "no HTTP address in the log: $(cat "$WORK/m.log")" >&2; exit 1; }

# A day of one-minute points ending now: each host's CPU follows a daily
# cycle (busy in the afternoon, UTC) with noise and the odd spike; the
# database also reports its free disk, shrinking slowly.
python3 - <<'PY' >"$WORK/points.txt"
import math, random, time
random.seed(14)
now = int(time.time()) // 60 * 60
hosts = {"web1": (35, 25), "web2": (30, 20), "db1": (55, 15)}
for t in range(now - 86400 + 60, now + 1, 60):
    day = math.sin((t % 86400) / 86400 * 2 * math.pi - math.pi / 2)
    for host, (base, swing) in hosts.items():
        cpu = base + swing * day + random.gauss(0, 3) + (25 if random.random() < 0.004 else 0)
        print(f"servers.{host}.cpu {min(100, max(0, cpu)):.1f} {t}")
    print(f"servers.db1.disk.free {500 - (t - now + 86400) / 86400 * 40 + random.gauss(0, 0.5):.2f} {t}")
PY
"$ROOT/target/release/metricsctl" --addr "$MADDR" import <"$WORK/points.txt"

URL="http://$HTTP/#target=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$TARGET")&from=-1d&until=now"
mkdir -p "$(dirname "$OUT")"
# --virtual-time-budget lets the page's fetches and the chart's image load
# before the picture is taken; no sandbox, as root in a container has none.
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 \
  --window-size="$WIDTH,$HEIGHT" --virtual-time-budget=10000 --screenshot="$OUT" "$URL" \
  >"$WORK/chromium.log" 2>&1 || { cat "$WORK/chromium.log" >&2; exit 1; }
python3 - "$OUT" "$WIDTH" "$HEIGHT" <<'PY'
import struct, sys, zlib
path, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (width, height), f"{w}x{h}, not {width}x{height}"
# An empty page compresses to a few KB; the chart's lines and labels do not.
assert 20_000 < len(data) < 200_000, f"{len(data)} bytes"
# Decode the rows and count the colours of graphite's first three lines.
idat = b"".join(data[i + 8:i + 8 + struct.unpack(">I", data[i:i + 4])[0]]
                for i in range(8, len(data)) if data[i + 4:i + 8] == b"IDAT")
raw = zlib.decompress(idat)
bpp = {2: 3, 6: 4}[data[25]]
stride, rows, prev = w * bpp, [], bytearray(w * bpp)
pos = 0
for _ in range(h):
    kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride]); pos += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        p = a + b - c
        pred = [0, a, b, (a + b) // 2, a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (b if abs(p - b) <= abs(p - c) else c)][kind]
        line[x] = (line[x] + pred) & 0xFF
    rows.append(bytes(line)); prev = line
def count(rgb):
    return sum(1 for row in rows for x in range(0, stride, bpp) if tuple(row[x:x + 3]) == rgb)
lines = {"blue": (0x64, 0x64, 0xff), "green": (0x00, 0xc8, 0x00), "red": (0xc8, 0x00, 0x32)}
found = {name: count(rgb) for name, rgb in lines.items()}
assert all(n > 100 for n in found.values()), f"the chart's lines are missing: {found}"
print(f"{path}: {w}x{h}, {len(data)} bytes, line pixels {found}")
PY

#!/usr/bin/env bash
# Python's graphyte (PyPI), installed into a venv in a temporary directory,
# sends known points to metricsd's Graphite port over TCP and UDP, with tags;
# every one must read back exactly, by `get` and by /render.
# Usage: scripts/agents/graphyte.sh   (see lib.sh for the environment)
source "$(dirname "$0")/lib.sh" graphyte
# Debian's own python3 makes venvs only with python3-venv installed.
python3 -m venv "$WORK/venv" 2>/dev/null || { rm -rf "$WORK/venv"; install_deb python3-venv; python3 -m venv "$WORK/venv"; }
install_graphyte() { "$WORK/venv/bin/pip" install -q --disable-pip-version-check graphyte; }
timed "install graphyte (pip, into a venv)" install_graphyte
start_deadline
start_metricsd

# Ten points a minute apart, an hour ago, on the minute; one tagged point
# whose tags graphyte writes in its own order; two by UDP.
T0=$(( ($(date +%s) - 3600) / 60 * 60 ))
"$WORK/venv/bin/python" - "$GPORT" "$T0" <<'PY' || fail "graphyte could not send"
import sys, graphyte
port, t0 = int(sys.argv[1]), int(sys.argv[2])
tcp = graphyte.Sender("127.0.0.1", port=port, prefix="agents.graphyte", timeout=5)
for i in range(10):
    tcp.send("load", i * 1.5 - 3, timestamp=t0 + 60 * i)
tcp.send("cpu", 42.25, timestamp=t0, tags={"host": "a", "dc": "x"})
udp = graphyte.Sender("127.0.0.1", port=port, prefix="agents.graphyte", protocol="udp")
udp.send("udp.temp", 21.5, timestamp=t0)
udp.send("udp.temp", -0.125, timestamp=t0 + 60)
PY

load=()
for i in $(seq 0 9); do load+=("$((T0 + 60 * i)) $(python3 -c "print($i * 1.5 - 3)")"); done
wait_until "graphyte's 13 points" eval '[ "$(stored_count)" -ge 13 ]'
expect_points agents.graphyte.load "${load[@]}"
# Tags are stored sorted by name: graphite's canonical form.
expect_points 'agents.graphyte.cpu;dc=x;host=a' "$T0 42.25"
expect_points agents.graphyte.udp.temp "$T0 21.5" "$((T0 + 60)) -0.125"
[ "$(stored_count)" -eq 13 ] || fail "$(stored_count) points stored where graphyte sent 13: $(keys)"
pass "13 points over TCP and UDP, tagged and not, read back exactly${HADDR:+ (get and /render)}"

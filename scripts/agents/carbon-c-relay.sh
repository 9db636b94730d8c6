#!/usr/bin/env bash
# Debian's carbon-c-relay forwards a known plaintext stream (2,000 points
# over 20 series, over several connections) to metricsd's Graphite port;
# every point must read back exactly, and nothing else arrive (submission
# mode: the relay adds no statistics of its own).
# Usage: scripts/agents/carbon-c-relay.sh   (see lib.sh for the environment)
source "$(dirname "$0")/lib.sh" carbon-c-relay
need_deb carbon-c-relay carbon-c-relay
start_deadline
start_metricsd

RPORT=$(free_port)
# Listening on loopback only (without a listen line it would take every
# interface, and a unix socket in /tmp).
cat >"$WORK/relay.conf" <<CONF
listen type linemode 127.0.0.1:$RPORT proto tcp ;
cluster metricsd forward 127.0.0.1:$GPORT ;
match * send to metricsd stop ;
CONF
background "$WORK/relay.log" carbon-c-relay -f "$WORK/relay.conf" -s -H agents-test
RELAY=$BGPID
relay_listens() { alive "$RELAY" "$WORK/relay.log" carbon-c-relay; python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$RPORT" 2>/dev/null; }
wait_until "carbon-c-relay to listen on $RPORT" relay_listens

# 20 series of 100 points, 10 s apart, values with and without fractions,
# negative and exponent-sized; sent over 4 connections of 500 lines.
T0=$(( ($(date +%s) - 7200) / 10 * 10 ))
python3 - "$T0" >"$WORK/stream.txt" <<'PY'
import sys
t0 = int(sys.argv[1])
for i in range(100):
    for s in range(20):
        print(f"agents.relay.s{s:02d} {(i * 20 + s) * 0.25 - 100 if s % 2 else (i - 50) * 1e6} {t0 + 10 * i}")
PY
for part in 0 1 2 3; do
  sed -n "$((part * 500 + 1)),$((part * 500 + 500))p" "$WORK/stream.txt" | send_plaintext "$RPORT" || fail "cannot send to the relay"
done
wait_until "the relay's 2000 points" eval '[ "$(stored_count)" -ge 2000 ]'
for s in $(seq -f '%02g' 0 19); do
  mapfile -t want < <(awk -v k="agents.relay.s$s" '$1 == k {print $3, $2}' "$WORK/stream.txt")
  expect_points "agents.relay.s$s" "${want[@]}"
done
[ "$(stored_count)" -eq 2000 ] || fail "$(stored_count) points stored where 2000 were relayed: $(keys | head)"
pass "2000 points over 20 series through carbon-c-relay $(carbon-c-relay -v | head -1 | cut -d' ' -f2), read back exactly${HADDR:+ (get and /render)}"

#!/usr/bin/env bash
# npm's statsd (Etsy's daemon, with its graphite backend), installed into a
# temporary directory, aggregates known counters, a gauge and timers and
# flushes them to metricsd's Graphite port every 2 s; the flushed values
# must be statsd's arithmetic exactly: a counter's count and its rate a
# second, a gauge's level, a timer's count, lower, upper, mean and sum.
# Usage: scripts/agents/statsd.sh   (see lib.sh for the environment)
source "$(dirname "$0")/lib.sh" statsd
command -v node >/dev/null || need_deb nodejs node
command -v npm >/dev/null || need_deb npm npm
install_statsd() { npm install --prefix "$WORK/statsd" --no-audit --no-fund --silent statsd >/dev/null; }
timed "install statsd (npm, into a temporary directory)" install_statsd
start_deadline
start_metricsd

SPORT=$(free_port)
MGMT=$(free_port)
# legacyNamespace false: counters as stats.counters.<name>.count and
# .rate, gauges as stats.gauges.<name>, timers as stats.timers.<name>.*.
cat >"$WORK/config.js" <<CONF
{
  address: "127.0.0.1", port: $SPORT,
  mgmt_address: "127.0.0.1", mgmt_port: $MGMT,
  graphiteHost: "127.0.0.1", graphitePort: $GPORT,
  flushInterval: 2000,
  backends: ["./backends/graphite"],
  graphite: { legacyNamespace: false, globalPrefix: "stats" },
  percentThreshold: [90]
}
CONF
STATSD=$WORK/statsd/node_modules/statsd
background "$WORK/statsd.log" sh -c "cd '$STATSD' && exec node stats.js '$WORK/config.js'"
SPID=$BGPID
statsd_up() { alive "$SPID" "$WORK/statsd.log" statsd; grep -q "server is up" "$WORK/statsd.log"; }
wait_until "statsd to start" statsd_up

# One datagram, so that all of it lands in one flush: 4 increments of 5
# (count 20, rate 20 / 2 s = 10 a second), a sampled increment of 1 at
# 0.5 (counted as 2), a gauge, and timings 100, 200, 300 and 400 ms.
python3 - "$SPORT" <<'PY'
import socket, sys
lines = ["agents.hits:5|c"] * 4 + ["agents.hits:1|c|@0.5", "agents.temp:21.5|g"]
lines += [f"agents.rt:{ms}|ms" for ms in (100, 200, 300, 400)]
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto("\n".join(lines).encode(), ("127.0.0.1", int(sys.argv[1])))
PY

# values KEY: the values of KEY's points, by timestamp.
values() { points "$1" | awk '{print $2}'; }
# The flush with the datagram, and the next one (a counter then flushes 0).
wait_until "two flushes of the counter" eval '[ "$(values stats.counters.agents.hits.count | wc -l)" -ge 2 ]'
counts=$(values stats.counters.agents.hits.count | tr '\n' ' ')
rates=$(values stats.counters.agents.hits.rate | tr '\n' ' ')
[[ "$counts" =~ ^(0\.0 )*22\.0\ (0\.0 )+$ ]] || fail "counter counts $counts: want 22.0 once, 0.0 otherwise"
[[ "$rates" =~ ^(0\.0 )*11\.0\ (0\.0 )+$ ]] || fail "counter rates $rates: want 11.0 (22 over 2 s) once"
gauge=$(values stats.gauges.agents.temp | sort -u | tr '\n' ' ')
[ "$gauge" = "21.5 " ] || fail "gauge values $gauge: want 21.5 at every flush"
# timer FIELD VALUE: the timer's FIELD in its one flush with timings.
timer() {
  local got
  got=$(values "stats.timers.agents.rt.$1" | grep -vx '0.0' | tr '\n' ' ')
  [ "$got" = "$2 " ] || fail "timer $1: got '$got', want $2"
}
timer count 4.0
timer lower 100.0
timer upper 400.0
timer mean 250.0
timer sum 1000.0
timer upper_90 400.0
# statsd's own figures arrive too.
keys | grep -qx 'stats.statsd.numStats' || fail "no stats.statsd.numStats: $(keys | tr '\n' ' ')"
if [ -n "$HADDR" ]; then
  mapfile -t want < <(points stats.counters.agents.hits.count)
  expect_points stats.counters.agents.hits.count "${want[@]}"
fi
pass "statsd's counter (22, 11/s), gauge (21.5) and timer (count 4, 100..400, mean 250) flushed exactly${HADDR:+ (get and /render)}"

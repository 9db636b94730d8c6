#!/usr/bin/env bash
# Debian's collectd (collectd-core) reads this machine's load and memory
# every second and sends them with its write_graphite plugin to metricsd's
# Graphite port; the series must arrive under collectd's exact names with
# plausible values: the load near /proc/loadavg's, the memory figures
# positive, below MemTotal and adding up to about it.
# Usage: scripts/agents/collectd.sh   (see lib.sh for the environment)
source "$(dirname "$0")/lib.sh" collectd
need_deb collectd-core collectd
start_deadline
start_metricsd

HOST=agents-test
PREFIX=collectd.$HOST
mkdir -p "$WORK/collectd"
cat >"$WORK/collectd.conf" <<CONF
Hostname "$HOST"
FQDNLookup false
BaseDir "$WORK/collectd"
PIDFile "$WORK/collectd/collectd.pid"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel info
  File STDOUT
</Plugin>
LoadPlugin load
LoadPlugin memory
LoadPlugin write_graphite
<Plugin write_graphite>
  <Node "metricsd">
    Host "127.0.0.1"
    Port "$GPORT"
    Protocol "tcp"
    Prefix "collectd."
    StoreRates true
    AlwaysAppendDS false
    SeparateInstances false
  </Node>
</Plugin>
CONF
collectd -C "$WORK/collectd.conf" -t || fail "collectd refuses its configuration"
background "$WORK/collectd.log" collectd -C "$WORK/collectd.conf" -f
CPID=$BGPID
LOAD=(shortterm midterm longterm)
MEMORY=(used free buffered cached slab_recl slab_unrecl)
arrived() {
  alive "$CPID" "$WORK/collectd.log" collectd
  local k stored
  stored=$(keys)
  for k in "${LOAD[@]/#/load.load.}" "${MEMORY[@]/#/memory.memory-}"; do
    grep -qx "$PREFIX.$k" <<<"$stored" || return 1
  done
  # Two rounds of readings: write_graphite sends as its buffer fills or
  # at the next interval.
  [ "$(points "$PREFIX.memory.memory-used" | wc -l)" -ge 2 ]
}
wait_until "collectd's load and memory series" arrived

# last KEY: the newest value of KEY.
last() { points "$1" | tail -1 | cut -d' ' -f2; }
# Whole-machine figures do not drift much in a few seconds.
read -r one five fifteen _ </proc/loadavg
for i in 0 1 2; do
  want=$(echo "$one $five $fifteen" | cut -d' ' -f$((i + 1)))
  got=$(last "$PREFIX.load.load.${LOAD[$i]}")
  python3 -c "import sys; g, w = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if 0 <= g and abs(g - w) <= 1 + w / 2 else 1)" "$got" "$want" ||
    fail "load ${LOAD[$i]} $got, where /proc/loadavg says $want"
done
total=$(awk '/^MemTotal:/{print $2 * 1024}' /proc/meminfo)
sum=0
for m in "${MEMORY[@]}"; do
  v=$(last "$PREFIX.memory.memory-$m")
  python3 -c "import sys; sys.exit(0 if 0 <= float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$v" "$total" ||
    fail "memory-$m is $v bytes, outside 0 .. MemTotal ($total)"
  sum=$(python3 -c "print($sum + float('$v'))")
done
python3 -c "import sys; s, t = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if 0.8 * t <= s <= 1.05 * t else 1)" "$sum" "$total" ||
  fail "the memory figures add up to $sum bytes, MemTotal is $total"
# Every series of the host is one of those named (no stray names).
stray=$(keys | grep -v -x -e "$PREFIX.load.load.\(shortterm\|midterm\|longterm\)" -e "$PREFIX.memory.memory-\(used\|free\|buffered\|cached\|slab_recl\|slab_unrecl\)" || true)
[ -z "$stray" ] || fail "series not from the load and memory plugins: $stray"
if [ -n "$HADDR" ]; then
  mapfile -t want < <(points "$PREFIX.memory.memory-used")
  expect_points "$PREFIX.memory.memory-used" "${want[@]}"
fi
pass "collectd $(collectd -h | sed -n 's/^collectd \([^,]*\),.*/\1/p') load (1 min $(last "$PREFIX.load.load.shortterm")) and memory (used $(last "$PREFIX.memory.memory-used") B) under their exact names${HADDR:+ (get and /render)}"

#!/usr/bin/env bash
# metricsd's Graphite port against VictoriaMetrics' (Debian's
# victoria-metrics), as quoted in BENCHMARKS.md ("Graphite ingestion
# against VictoriaMetrics"). One client, `metricsd-bench --server graphite`,
# streams the same generated plaintext (the same keys, values and
# timestamps) to each server in rounds that alternate which goes first, and
# confirms arrival through each server's own read API (metricsd: stats and
# get; VictoriaMetrics: /api/v1/query and /api/v1/export). Each server's
# CPU time (utime + stime of all its threads, /proc/PID/stat) is read before
# and after every run, and again 2 s later (VictoriaMetrics merges what it
# stored in the background). Medians of the per-round ratios are reported:
# this is a noisy shared 2-core machine.
#
# Before the rounds, each server takes one untimed run over the same keys:
# VictoriaMetrics makes a new series searchable only seconds after its first
# point (its index is flushed on a timer), which would otherwise dominate
# the first round, and the goal is the cost of points, not of new series.
#
# VictoriaMetrics runs with -retentionPeriod 100y: the stream gives every
# point its own second (a run of N points spans N seconds, ending years
# ago), and the default retention of a month would drop most of it.
#
# Talks only to 127.0.0.1; every run is bounded in points and stops itself.
# Usage: scripts/compare-victoria.sh [ROUNDS]   (1 to 10, default 5; installs
# victoria-metrics and bc with apt-get if they are missing)
# POINTS=N points a run (default 2000000), CONNECTIONS (default 10) and
# PIPELINE (lines a write, default 64) shape the stream. DURABLE=1 runs
# metricsd with its journal (a data directory in the temporary directory,
# the default --fsync everysec), as VictoriaMetrics keeps its points on
# disk; by default metricsd runs --in-memory.
NEEDS="victoria-metrics bc python3" source "$(dirname "$0")/common.sh"
ROUNDS=${1:-5}
POINTS=${POINTS:-2000000}
CONNECTIONS=${CONNECTIONS:-10}
PIPELINE=${PIPELINE:-64}
KEYS=1000
STREAM=(--server graphite --connections "$CONNECTIONS" --pipeline "$PIPELINE" --keys "$KEYS")

# metricsd with a Graphite port: the course protocol's address is printed
# after the Graphite port's, so both are known once it is (common.sh's
# start_metricsd reads the first "listening on" only).
m_log=$WORK/m.log
if [ "${DURABLE:-0}" = 1 ]; then M_STORE=(--data-dir "$WORK/metricsd") M_BENCH=(--allow-durable); else M_STORE=(--in-memory) M_BENCH=(); fi
"${METRICSD:-$ROOT/target/release/metricsd}" --listen 127.0.0.1:0 --graphite-listen 127.0.0.1:0 "${M_STORE[@]}" >"$m_log" 2>&1 &
MPID=$!
PIDS+=($MPID)
for _ in $(seq 1000); do grep -q '^listening on .*:[0-9]' "$m_log" && break; sleep 0.01; done
MADDR=$(grep -o '^listening on [^ ]*' "$m_log" | cut -d' ' -f3)
MGRAPHITE=$(grep -o '^graphite listening on [^ ]*' "$m_log" | cut -d' ' -f4)
[ -n "$MADDR" ] && [ -n "$MGRAPHITE" ] || { echo "metricsd did not start: $(cat "$m_log")" >&2; exit 1; }

VGRAPHITE=127.0.0.1:$(free_port)
VHTTP=127.0.0.1:$(free_port)
victoria-metrics -graphiteListenAddr "$VGRAPHITE" -httpListenAddr "$VHTTP" -storageDataPath "$WORK/victoria" \
  -retentionPeriod 100y >"$WORK/v.log" 2>&1 &
VPID=$!
PIDS+=($VPID)
for _ in $(seq 1000); do python3 -c 'import socket,sys; h,p=sys.argv[1].split(":"); socket.create_connection((h,int(p)),1).close()' "$VGRAPHITE" 2>/dev/null && break; sleep 0.01; done
kill -0 "$VPID" || { echo "victoria-metrics did not start: $(tail -5 "$WORK/v.log")" >&2; exit 1; }

print_machine
echo "victoria-metrics: $(dpkg-query -W -f='${Version}' victoria-metrics)"
if [ ${#M_BENCH[@]} -gt 0 ]; then echo "metricsd: journal in a data directory, --fsync everysec"; else echo "metricsd: --in-memory"; fi
echo "rounds: $ROUNDS; $POINTS points a run over $KEYS keys, $CONNECTIONS connections, $PIPELINE lines a write; CPU in clock ticks of $TICK_US us"

# Timestamps: one second per point, every run after the last, all in the
# past (VictoriaMetrics refuses points from the future).
TS=$(($(date +%s) - (ROUNDS + 1) * 2 * (POINTS + 1000) - 86400))
next_ts() { TS=$((TS + POINTS + 1000)); }
# confirm_of SERVER: the --confirm argument (and --allow-durable for a
# durable metricsd: the tool refuses to write into one unasked).
confirm_of() { if [ "$1" = metricsd ]; then echo "metricsd:$MADDR ${M_BENCH[*]}"; else echo "victoria:$VHTTP"; fi; }
addr_of() { if [ "$1" = metricsd ]; then echo "$MGRAPHITE"; else echo "$VGRAPHITE"; fi; }
pid_of() { if [ "$1" = metricsd ]; then echo "$MPID"; else echo "$VPID"; fi; }

for s in metricsd victoria; do
  bench "${STREAM[@]}" --addr "$(addr_of $s)" --confirm $(confirm_of $s) --requests 20000 --timestamp-base "$TS" >/dev/null
done
next_ts

RESULTS=$WORK/results # lines: round server pps stored_pps server_us_per_point settled_us_per_point client_us_per_point
for round in $(seq "$ROUNDS"); do
  servers=(metricsd victoria)
  ((round % 2)) || servers=(victoria metricsd)
  next_ts
  for s in "${servers[@]}"; do
    pid=$(pid_of $s)
    before=$(cpu_ticks "$pid")
    out=$( { TIMEFORMAT='%U %S'; time bench "${STREAM[@]}" --addr "$(addr_of $s)" --confirm $(confirm_of $s) \
      --requests "$POINTS" --timestamp-base "$TS" >"$WORK/bench.out"; } 2>&1 ) || { echo "$out" >&2; exit 1; }
    after=$(cpu_ticks "$pid")
    sleep 2
    settled=$(cpu_ticks "$pid")
    n=$(jfield points <"$WORK/bench.out")
    client=$(echo "$out" | tail -1 | awk -v n="$n" '{printf "%.4f", ($1 + $2) * 1e6 / n}')
    echo "$round $s $(jfield throughput_pps <"$WORK/bench.out") $(jfield stored_pps <"$WORK/bench.out") \
$(echo "scale=4; ($after - $before) * $TICK_US / $n" | bc) $(echo "scale=4; ($settled - $before) * $TICK_US / $n" | bc) $client" >>"$RESULTS"
  done
  echo "round $round done"
done

echo "== raw results (round server confirmed_pps stored_pps server_cpu_us_per_point settled_cpu_us_per_point client_cpu_us_per_point)"
cat "$RESULTS"
# per_round SERVER COLUMN: that column in each round, in round order.
per_round() { awk -v s="$1" -v k="$2" '$2==s {print $1, $k}' "$RESULTS" | sort -n | cut -d' ' -f2; }
med() { per_round "$1" "$2" | median; }
# ratio COLUMN: the median over rounds of metricsd's value / VictoriaMetrics'.
ratio() { paste -d' ' <(per_round metricsd "$1") <(per_round victoria "$1") | awk '{if ($2 > 0) printf "%.4f\n", $1 / $2; else print "nan"}' | median; }

echo
echo "== medians of $ROUNDS rounds (ratios are per round, metricsd / VictoriaMetrics, then the median)"
echo '| figure | metricsd | VictoriaMetrics | ratio | goal |'
echo '| --- | --- | --- | --- | --- |'
printf '| points/s, first byte to all read back | %.0f | %.0f | **%.2f×** | |\n' "$(med metricsd 3)" "$(med victoria 3)" "$(ratio 3)"
printf '| points/s, first byte to all counted stored | %.0f | %.0f | %.2f× | |\n' "$(med metricsd 4)" "$(med victoria 4)" "$(ratio 4)"
printf '| server CPU µs/point, during the run | %.3f | %.3f | **%.2f×** | ≤ 0.5× |\n' "$(med metricsd 5)" "$(med victoria 5)" "$(ratio 5)"
printf '| server CPU µs/point, with 2 s after it | %.3f | %.3f | %.2f× | ≤ 0.5× |\n' "$(med metricsd 6)" "$(med victoria 6)" "$(ratio 6)"
printf '| client CPU µs/point (metricsd-bench) | %.3f | %.3f | | |\n' "$(med metricsd 7)" "$(med victoria 7)"

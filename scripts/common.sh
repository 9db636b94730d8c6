# Shared by the figure scripts: `source "$(dirname "$0")/common.sh"`.
# Installs what is missing (the Debian packages in NEEDS, default
# redis-server strace bc), builds metricsd, metricsd-bench and metricsctl
# (release), and sets ROOT, BENCH (the metricsd-bench binary), METRICSCTL and WORK (a temporary
# directory removed on exit, with every process in PIDS killed).
# METRICSD=path runs another build of metricsd (an earlier commit's, to
# compare the two against the same peer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MISSING=()
for tool in ${NEEDS:-redis-server strace bc}; do command -v "$tool" >/dev/null || MISSING+=("$tool"); done
if [ ${#MISSING[@]} -gt 0 ]; then
  apt-get update -q >/dev/null
  apt-get install -yq "${MISSING[@]}" >/dev/null
fi
cargo build --release -q --bin metricsd --bin metricsd-bench --bin metricsctl
BENCH=$ROOT/target/release/metricsd-bench
METRICSCTL=$ROOT/target/release/metricsctl
WORK=$(mktemp -d)
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# listen_addr LOG: the address in LOG's `listening on ADDR` line, once that
# line is whole (unbuffered stderr writes it in pieces, and a reader that
# came between them got `127.0.0.1:` alone).
listen_addr() { cat "$1" 2>/dev/null | tr '\n' '\t' | grep -o 'listening on [^\t]*'$'\t' | head -1 | cut -d' ' -f3 | tr -d '\t'; }
# wait_listening LOG [TRIES]: waits (10 ms a try, default 1000) until
# listen_addr finds the address, and prints it; fails if it never does.
wait_listening() {
  local addr=
  for _ in $(seq "${2:-1000}"); do addr=$(listen_addr "$1") && [ -n "$addr" ] && break; sleep 0.01; done
  [ -n "$addr" ] || { echo "metricsd did not start: $(cat "$1")" >&2; return 1; }
  echo "$addr"
}

# start_metricsd LOG ARGS...: starts metricsd on a free loopback port and
# waits until it listens; sets MPID and MADDR.
start_metricsd() {
  local log=$1; shift
  : >"$log" # emptied here: the background child's own redirection may come late
  "${METRICSD:-$ROOT/target/release/metricsd}" --listen 127.0.0.1:0 "$@" >"$log" 2>&1 &
  MPID=$!; PIDS+=($MPID)
  MADDR=$(wait_listening "$log")
}
stop_metricsd() { kill -TERM "$MPID"; wait "$MPID" || true; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# start_redis LOG ARGS...: starts redis-server on a free loopback port,
# without persistence unless ARGS ask for it, and waits (up to 10 s) until
# it answers PING; sets RPID, RPORT and RADDR.
start_redis() {
  local log=$1; shift
  RPORT=$(free_port)
  redis-server --bind 127.0.0.1 --port "$RPORT" --save '' --appendonly no "$@" >"$log" 2>&1 &
  RPID=$!; PIDS+=($RPID)
  for _ in $(seq 1000); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.01; done
  redis-cli -p "$RPORT" ping >/dev/null || { echo "redis-server did not start: $(cat "$log")" >&2; return 1; }
  RADDR=127.0.0.1:$RPORT
}
stop_redis() { kill "$RPID"; wait "$RPID" || true; }
# bench ARGS...: one metricsd-bench run, its JSON report on stdout.
bench() { "$BENCH" --json "$@"; }
# jfield KEY: a number from the metricsd-bench report on stdin.
jfield() { grep -o "\"$1\":[0-9.e+-]*" | head -1 | cut -d: -f2; }
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
# cpu_ticks PID: utime + stime in clock ticks, all threads. The comm field
# may hold spaces: count fields after its closing parenthesis (utime is
# field 14).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{a[NR]=$1} END{print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
print_machine() {
  echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
  if command -v redis-server >/dev/null; then echo "redis: $(redis-server --version | cut -d' ' -f3)"; fi
}

# Shared by the figure scripts: `source "$(dirname "$0")/common.sh"`.
# Installs what is missing, builds metricsd and loadmeter (release), and sets
# ROOT, LM (the loadmeter binary) and WORK (a temporary directory removed on
# exit, with every process in PIDS killed). METRICSD=path runs another build
# of metricsd (an earlier commit's, to compare the two against the same peer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=$ROOT/../shared
for tool in redis-server strace bc; do
  command -v $tool >/dev/null || { apt-get update -q >/dev/null; apt-get install -yq redis-server strace bc >/dev/null; }
done
cargo build --release -q --bin metricsd
# shared/ is read-only: build loadmeter into our own target directory.
cargo build --release -q --manifest-path "$SHARED/tools/loadmeter/Cargo.toml" --target-dir "$ROOT/target/loadmeter"
LM=$ROOT/target/loadmeter/release/loadmeter
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
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
print_machine() {
  echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
  echo "redis: $(redis-server --version | cut -d' ' -f3)"
}

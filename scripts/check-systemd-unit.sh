#!/usr/bin/env bash
# Checks contrib/metricsd.service with `systemd-analyze verify`, against the
# binary this tree builds (the unit's /usr/local/bin path is swapped for it,
# since verify insists that ExecStart names an existing executable).
# Usage: scripts/check-systemd-unit.sh [PATH_TO_METRICSD]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v systemd-analyze >/dev/null || { apt-get update -q && apt-get install -yq systemd; }
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin metricsd
  bin=$PWD/target/release/metricsd
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
bin=$(realpath "$bin")
sed "s#/usr/local/bin/metricsd#$bin#" contrib/metricsd.service > "$dir/metricsd.service"
# verify prints warnings but exits 0 for some of them: any output is a failure.
out=$(systemd-analyze verify "$dir/metricsd.service" 2>&1) || { echo "$out"; exit 1; }
[ -z "$out" ] || { echo "$out"; echo "systemd-analyze verify: warnings above"; exit 1; }
echo "contrib/metricsd.service: systemd-analyze verify passed"

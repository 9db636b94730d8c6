#!/usr/bin/env bash
# Runs every agent script (or those named: graphyte carbon-c-relay statsd
# collectd) and prints a summary table: result, install time (0 when the
# agent was installed already) and the whole script's time. Exit status 1
# when any failed. Each script is cut off after 300 s.
# Usage: scripts/agents/run-all.sh [AGENT...]
set -uo pipefail
# A relative METRICSD names a file from where the caller stands.
[ -z "${METRICSD:-}" ] || export METRICSD=$(realpath "$METRICSD")
cd "$(dirname "$0")"
AGENTS=("$@")
[ ${#AGENTS[@]} -gt 0 ] || AGENTS=(graphyte carbon-c-relay statsd collectd)
# Built once here, not by each script in turn (unless METRICSD names a
# build to run, as in lib.sh).
if [ -z "${METRICSD:-}" ]; then
  (cd ../.. && cargo build --release -q --bin metricsd --bin metricsctl) || exit 1
fi
LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
failed=0
rows=()
for agent in "${AGENTS[@]}"; do
  [ -x "./$agent.sh" ] || { echo "no such agent script: $agent.sh" >&2; exit 2; }
  start=$SECONDS
  if timeout 300 "./$agent.sh" >"$LOGS/$agent.out" 2>"$LOGS/$agent.err"; then result=pass; else result=FAIL; failed=1; fi
  total=$((SECONDS - start))
  install=$(awk '/: install .*: [0-9]+ s$/ {n += $(NF - 1)} END {print n + 0}' "$LOGS/$agent.err")
  cat "$LOGS/$agent.out" "$LOGS/$agent.err"
  rows+=("$(printf '| %s | %s | %s s | %s s |' "$agent" "$result" "${install:-0}" "$total")")
done
echo
echo "| agent | result | install | total |"
echo "| --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
exit $failed

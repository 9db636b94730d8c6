#!/usr/bin/env bash
# Runs one cargo-fuzz target of fuzz/ for a bounded time, on one core.
#
# Usage: scripts/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags...]
#   TARGET   parse_request, parse_response or chunk (`cargo fuzz list`)
#   SECONDS  how long to fuzz (default 600)
# Example: scripts/fuzz.sh parse_request 600
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address and
# libFuzzer's coverage instrumentation). RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, so no nightly toolchain has to be installed; it
# affects only this command. Installs cargo-fuzz if it is missing.
#
# The corpus grows in fuzz/corpus/TARGET and a crashing input lands in
# fuzz/artifacts/TARGET (both ignored by git); a crash exits non-zero and
# prints how to reproduce it (`scripts/fuzz.sh TARGET 0 fuzz/artifacts/...`
# runs a single input: libFuzzer takes a file argument as one run).
# One fuzzing process on one core, so other work on the machine keeps its
# cores: no -jobs, -workers or -fork (libFuzzer's default). Even -jobs=1 would
# run the fuzzer as a child writing to fuzz-0.log instead of this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...]}
seconds=${2:-600}
shift $(($# < 2 ? $# : 2))
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
exec cargo fuzz run "$target" -- -max_total_time="$seconds" -print_final_stats=1 "$@"

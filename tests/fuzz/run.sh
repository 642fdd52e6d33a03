#!/usr/bin/env bash
# run.sh: runs every harness for FUZZ_SECONDS, growing its corpus in
# build/fuzz-corpus/NAME (seeded from tests/fuzz/corpus/NAME), and prints
# executions and coverage per harness.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}; secs=${FUZZ_SECONDS:-60}; rc=0
for h in "$BUILD"/fuzz/fuzz_*; do
  name=$(basename "$h"); short=${name#fuzz_}
  out="$BUILD/fuzz-corpus/$short"; mkdir -p "$out"
  seeds=(); [ -d "tests/fuzz/corpus/$short" ] && seeds=("tests/fuzz/corpus/$short")
  log="$BUILD/fuzz-corpus/$short.log"
  if "$h" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
       -artifact_prefix="$BUILD/fuzz-corpus/$short-" "$out" "${seeds[@]}" >"$log" 2>&1; then
    st=ok; else st=CRASH; rc=1; fi
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
  printf '%-24s %-6s %8ss execs=%s cov=%s\n' "$name" "$st" "$secs" "${execs:-?}" "${cov:-?}"
done
exit $rc

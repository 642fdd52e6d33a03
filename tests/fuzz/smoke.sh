#!/usr/bin/env bash
# smoke.sh HARNESS SECONDS: runs one libFuzzer harness from its seed corpus for
# a bounded time and reports it as one TAP test.
set -u
h=$1; secs=$2; name=$(basename "$h")
corpus="tests/fuzz/corpus/${name#fuzz_}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
seeds=(); [ -d "$corpus" ] && seeds=("$corpus")
if (cd "$work" && "$OLDPWD/$h" -max_total_time="$secs" -max_len=4096 -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" "${seeds[@]/#/$OLDPWD/}") >"$work/out" 2>&1; then
  grep -E 'stat::number_of_executed_units|cov:' "$work/out" | tail -2 | sed 's/^/# /'
  echo "ok 1 - $name ran ${secs}s without a crash"
else
  tail -40 "$work/out" | sed 's/^/# /'
  echo "not ok 1 - $name crashed"
  exit 1
fi

#!/usr/bin/env bash
# Runs every suite (unit, integration, fuzz smoke) and prints, last, one line
# "N passed, N failed". Every suite speaks TAP ("ok"/"not ok" lines); a suite
# that crashes or exits non-zero without reporting a failure counts as one.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-10}
LOGDIR="$BUILD/test-logs"
rm -rf "$LOGDIR"; mkdir -p "$LOGDIR"
passed=0; failed=0

# run_suite NAME CMD...: runs CMD, counts its TAP lines.
run_suite() {
  local name=$1; shift
  local log="$LOGDIR/$name.log"
  mkdir -p "$(dirname "$log")"
  "$@" >"$log" 2>&1
  local rc=$?
  local ok=0 nok=0
  if [ -f "$log" ]; then
    ok=$(grep -cE '^ok ' "$log" || true)
    nok=$(grep -cE '^not ok ' "$log" || true)
  fi
  ok=${ok:-0}; nok=${nok:-0}
  if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; fi
  if [ "$ok" -eq 0 ] && [ "$nok" -eq 0 ]; then nok=1; fi
  passed=$((passed + ok)); failed=$((failed + nok))
  if [ "$nok" -eq 0 ]; then
    printf '%-40s %4d passed\n' "$name" "$ok"
  else
    printf '%-40s %4d passed %4d FAILED (log: %s)\n' "$name" "$ok" "$nok" "$log"
    grep -E '^not ok |^# |ERROR|error' "$log" | head -20 | sed 's/^/    /'
  fi
}

# One throwaway PostgreSQL cluster for the run (tests/pg/pgctl): suites test
# both backends against it, each in a fresh database of its own. Stopped at
# the end unless it was already running. Without PostgreSQL installed (make
# deps could not install it) the PostgreSQL half is skipped, said aloud.
PG_DIR="$BUILD/pg"
pg_was_up=0
tests/pg/pgctl status "$PG_DIR" 2>/dev/null && pg_was_up=1
pg_dsn=$(tests/pg/pgctl start "$PG_DIR" 2>"$LOGDIR/pgctl.log")
pg_rc=$?
if [ "$pg_rc" -eq 0 ]; then
  POS_TEST_PG_DSN=$pg_dsn
  POS_TEST_PG_DIR=$(cd "$PG_DIR" && pwd -P)
  export POS_TEST_PG_DSN POS_TEST_PG_DIR
  [ "$pg_was_up" -eq 1 ] || trap 'tests/pg/pgctl stop "$PG_DIR" >/dev/null 2>&1' EXIT
  echo "== PostgreSQL test cluster: $pg_dsn"
elif [ "$pg_rc" -eq 3 ]; then
  echo "SKIP: PostgreSQL 15 is not installed (make deps could not install it):" \
    "the PostgreSQL half of every suite is skipped"
else
  echo "PostgreSQL test cluster did not start (log: $LOGDIR/pgctl.log):" \
    "the PostgreSQL half cannot run"
  sed 's/^/    /' "$LOGDIR/pgctl.log" | head -5
  failed=$((failed + 1))
fi

echo "== unit"
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_suite "unit/$(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
done

echo "== integration"
# The leak scan reads what every integration suite left, so it runs after
# the PostgreSQL pass below.
for t in tests/integration/test_*; do
  [ -x "$t" ] || continue
  [ "$(basename "$t")" = test_zz_leak_scan ] && continue
  run_suite "integration/$(basename "$t")" "$t"
done

# The second pass: integration suites again with every Central on a fresh
# PostgreSQL database (POS_TEST_BACKEND, decided in posenv.py). The list is
# what fits in about three extra minutes on two cores: the suites that
# write and read most of the store (baskets, households, offers, receipts,
# vendors, analysts, conversations, keys). Suites about the SQLite file
# itself (test_db_beside_serve, the backup story of test_store_controller)
# and those already on PostgreSQL (test_two_nodes, test_retention, test_pgctl)
# are not repeated. test_soak_short runs its 30 s of chaos on two nodes
# there (tests/soak/soak.py).
PG_SUITES=${PG_SUITES:-"test_central test_central_api test_enrol test_offers test_history
  test_receipts test_vendors test_analyst test_vendor_page test_visitors test_hardening
  test_key_rotation test_revoke test_agent_lane test_route_roles test_limits test_keys_isolation
  test_soak_short"}
if [ -n "${POS_TEST_PG_DIR:-}" ]; then
  echo "== integration on PostgreSQL"
  pg_t0=$SECONDS
  for s in $PG_SUITES; do
    t=tests/integration/$s
    [ -x "$t" ] || continue
    run_suite "integration-pg/$s" env POS_TEST_BACKEND=postgresql "$t"
  done
  echo "   (the PostgreSQL pass took $((SECONDS - pg_t0)) s)"
else
  echo "SKIP: integration on PostgreSQL (no test cluster)"
fi
[ -x tests/integration/test_zz_leak_scan ] &&
  run_suite integration/test_zz_leak_scan tests/integration/test_zz_leak_scan

echo "== fuzz smoke (${FUZZ_SMOKE_SECONDS}s each)"
for f in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  run_suite "fuzz/$(basename "$f")" tests/fuzz/smoke.sh "$f" "$FUZZ_SMOKE_SECONDS"
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

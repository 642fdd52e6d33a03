#!/usr/bin/env bash
# make bench: floors, ceilings and the product measured in one run on this
# machine, a table with ratios against the targets, and
# $BUILD/bench/results.json. Timing never fails the run: the exit status is
# non-zero only when a benchmark crashed or could not run.
#
# Environment: BUILD (build), BENCH_SECONDS (10: each timed run),
# BENCH_IDLE_SECONDS (10; the issue asks for 60), BENCH_LANES (1000),
# BENCH_HISTORY_10M (1: also the 10M-row history database, about 15 s to
# load once, then reused from $BUILD/bench/cache), BENCH_CONNS (64),
# BENCH_STORE_RATE (200: resolves per second through the store's controller),
# BENCH_PG (1: also the PostgreSQL part, tests/bench/pg.sh, which has its
# own settings; it says so and measures nothing without PostgreSQL 15).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
S=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-64}
LANES=${BENCH_LANES:-1000}
H10M=${BENCH_HISTORY_10M:-1}
STORE_RATE=${BENCH_STORE_RATE:-200}
export BUILD BENCH_SECONDS="$S" BENCH_IDLE_SECONDS="${BENCH_IDLE_SECONDS:-10}"
OUT="$BUILD/bench"
WORK="$OUT/work"
LOGS="$OUT/logs"
CACHE="$OUT/cache"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
HALF=$(( S / 2 > 0 ? S / 2 : 1 ))

rm -rf "$WORK" "$LOGS"
mkdir -p "$WORK" "$LOGS" "$CACHE"
. tests/bench/lib.sh

# openssl speed: the X25519 ceiling on one core and on both.
x25519_speed() {
  local one two
  one=$(openssl speed -seconds "$HALF" ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}')
  two=$(openssl speed -seconds "$HALF" -multi 2 ecdhx25519 2>/dev/null | awk '/X25519/ {print $NF}')
  [ -n "$one" ] && [ -n "$two" ] || return 1
  echo "openssl speed ecdhx25519: ${one}/s on one core, ${two}/s with -multi 2"
  echo "RESULT {\"x25519_speed\":{\"one_core_per_s\":$one,\"two_cores_per_s\":$two}}"
}

# loadgen_rps NAME: the req/s a loadgen run printed.
loadgen_rps() {
  sed -n 's/.*"rps":\([0-9.]*\).*/\1/p' "$LOGS/$1.log" | head -1
}

echo "make bench: BENCH_SECONDS=$S, $(nproc) cores, $(openssl version | cut -d' ' -f1-2)," \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "RESULT {\"machine\":{\"loadavg_start\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"cores\":$(nproc)}}" \
  >"$LOGS/machine.log"
step x25519-speed x25519_speed
step cryptofloor "$BUILD/bench/cryptofloor" "$HALF"
step keys-roundtrip "$BUILD/bench/keysbench" "$HALF"

# A central home, a terminal certificate, the server on a free port.
"$BUILD/bin/pos-central" setup "$WORK/central" >"$LOGS/setup.log" 2>&1 &&
  "$BUILD/bin/pos-central" terminal-cert "$WORK/central" --store S1 --terminal T1 \
    --out "$WORK/term" >>"$LOGS/setup.log" 2>&1 || failed="$failed central-setup"
PORT=$(free_port)
if [ -f "$WORK/central/central.conf" ]; then
  "$BUILD/bin/pos-central" serve -c "$WORK/central/central.conf" --listen "127.0.0.1:$PORT" \
    >"$LOGS/central.log" 2>&1 &
  central_pid=$!
  for _ in $(seq 100); do
    curl -sf --cacert "$WORK/central/ca.crt" "https://127.0.0.1:$PORT/v1/health" >/dev/null && break
    sleep 0.1
  done
fi

if [ -n "$central_pid" ] && kill -0 "$central_pid" 2>/dev/null; then
  LG=("$BUILD/bench/loadgen" --port "$PORT" --dir "$WORK/term" --pid "$central_pid" --conns "$CONNS")
  step load-health "${LG[@]}" --route health --seconds "$S" --label health
  # Distinct EncTIDs, sealed before the run: enough for 30k/s (sealing takes
  # about as long as the run); past that the pool is reused (printed).
  pool=$(( S * 30000 > 2000000 ? 2000000 : S * 30000 ))
  step load-resolve "${LG[@]}" --route resolve --seconds "$S" --pool "$pool" --label resolve
  rps=$(loadgen_rps load-resolve); rps=${rps%.*}
  rate=$(( ${rps:-1000} / 2 > 100 ? ${rps:-1000} / 2 : 100 ))
  step load-resolve-open "${LG[@]}" --route resolve --seconds "$S" --rate "$rate" \
    --pool $(( S * rate + 1000 > 2000000 ? 2000000 : S * rate + 1000 )) --label resolve_open
  # Every request a TID never seen: the pool must outlast the run (a
  # reused EncTID is a known TID; report.py then calls the run unmeasured).
  step load-enrol "${LG[@]}" --route enrol --seconds "$HALF" --pool $(( HALF * 30000 > 2000000 ? 2000000 : HALF * 30000 )) --label enrol
  step load-baskets "${LG[@]}" --route baskets --seconds "$S" --label baskets
  # Many terminals at once: larger groups per commit (the ingest capacity).
  step load-baskets-256 "${LG[@]}" --route baskets --seconds "$S" \
    --label baskets_256 --conns 256
  step tls-reconnect "$BUILD/bench/tlsbench" --port "$PORT" --dir "$WORK/term" --pid "$central_pid" --n 1000
  kill -TERM "$central_pid"
  wait "$central_pid"; rc=$?
  central_pid=""
  [ "$rc" -eq 0 ] || { echo "   ** pos-central exited $rc on SIGTERM"; failed="$failed central-exit"; }
  # One line per request is a few hundred MB by now: keep everything else.
  grep -v ' event=request ' "$LOGS/central.log" >"$LOGS/central-events.log"
  echo "$(grep -c ' event=request ' "$LOGS/central.log") request lines dropped" >>"$LOGS/central-events.log"
  rm -f "$LOGS/central.log"
else
  echo "** pos-central did not start (see $LOGS/central.log, $LOGS/setup.log)"
  failed="$failed central-start"
fi

step sqlite-floor "$BUILD/bench/sqlfloor" "$WORK" "$S"
step history-1M "$BUILD/bench/histbench" "$CACHE/history-1M.db" 1000000 200 "$S"
if [ "$H10M" = "1" ]; then
  step history-10M "$BUILD/bench/histbench" "$CACHE/history-10M.db" 10000000 200 "$S"
  # The workbench's data calls on the same database (its first open adds
  # the items_gtin index and the cohorts' tables to a database cached
  # before them, and its first run folds every basket: about 100 s).
  step analyst-10M "$BUILD/bench/anabench" "$CACHE/history-10M.db" 100
fi
step agent "$PY" tests/bench/agentbench.py "$WORK/agent" "$LANES"
# The store's controller: its own central; resolves relayed at a store's
# rate, then its tlog commit rate against its forwarding rate.
step store "$PY" tests/bench/storebench.py "$WORK/store" "$S" "$STORE_RATE" 8

if [ "${BENCH_PG:-1}" = "1" ]; then
  LOGS="$LOGS" PG_WORK="$WORK/pg" BENCH_CONNS="$CONNS" BENCH_HISTORY_10M="$H10M" \
    tests/bench/pg.sh || failed="$failed postgresql"
fi

echo "RESULT {\"machine_end\":{\"loadavg_end\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}}" \
  >"$LOGS/machine-end.log"
echo
"$PY" tests/bench/report.py "$LOGS" "$OUT/results.json" || failed="$failed report"
if [ -n "$failed" ]; then
  echo "bench: these did not run to the end:$failed"
  exit 1
fi
exit 0

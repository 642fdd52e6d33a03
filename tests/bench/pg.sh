#!/usr/bin/env bash
# make bench, the PostgreSQL part (run.sh runs it; it also runs alone, then
# tests/bench/report.py LOGDIR OUT.json reads its logs). One cluster,
# started with tests/pg/pgctl in $BUILD/bench/cache/pg and kept there:
#
#   pg-floor        pgfloor: the store's rows for 20-item baskets by COPY
#   pg-resolve-*    resolve of known TIDs on a central over SQLite, then on
#                   one over PostgreSQL, same loadgen settings, back to back
#   pg-baskets*     POST /v1/baskets on the PostgreSQL central (64 and 256
#                   connections), against the floor
#   pg-history-10M  histbench on database pos_hist_10m, loaded by COPY once
#                   (about a minute) and reused by later runs
#
# When PostgreSQL 15 is not installed it says so and measures nothing (the
# report then shows the PostgreSQL targets as not measured). Exit status:
# non-zero only when a benchmark crashed or could not run.
#
# The cluster is pgctl's (fsync on, synchronous commit) with one change:
# shared_buffers = BENCH_PG_SHARED_BUFFERS (2GB), so the 10M-row database
# fits in PostgreSQL's own cache, as on a server sized for its data.
#
# Environment: BUILD (build), BENCH_SECONDS (10), BENCH_CONNS (64),
# BENCH_HISTORY_10M (1), BENCH_PG_SHARED_BUFFERS (2GB), BENCH_PG_WORKERS
# ([central] workers of both centrals; 0, the default: one per core),
# BENCH_PG_CONF (more settings of both centrals, "section.key=value ...",
# e.g. analyst.fold_ms=3600000 to keep the cohorts' fold out of a run), PGCTL_PORT (passed
# to pgctl), LOGS (where the logs go: $BUILD/bench/logs), PG_WORK
# ($BUILD/bench/work/pg).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
S=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNS:-64}
H10M=${BENCH_HISTORY_10M:-1}
OUT="$BUILD/bench"
LOGS=${LOGS:-$OUT/logs}
WORK=${PG_WORK:-$OUT/work/pg}
PGDIR="$OUT/cache/pg"
PGCTL=tests/pg/pgctl
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
. tests/bench/lib.sh

# central_up NAME [DSN]: a central home $WORK/NAME (SQLite, or PostgreSQL
# on DSN), a terminal certificate, the server on a free port: sets PORT and
# central_pid.
central_up() {
  local home="$WORK/$1"
  rm -rf "$home" "$home-term"
  "$BUILD/bin/pos-central" setup "$home" >"$LOGS/pg-setup-$1.log" 2>&1 &&
    "$BUILD/bin/pos-central" terminal-cert "$home" --store S1 --terminal T1 \
      --out "$home-term" >>"$LOGS/pg-setup-$1.log" 2>&1 || return 1
  "$PY" - "$home/central.conf" "${BENCH_PG_WORKERS:-0}" "${2:-}" ${BENCH_PG_CONF:-} \
    <<'EOF' || return 1
import sys
sys.path.insert(0, "tests/integration")
from posenv import set_conf
set_conf(sys.argv[1], "central", "workers", sys.argv[2])
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    set_conf(sys.argv[1], k.split(".", 1)[0], k.split(".", 1)[1], v)
if sys.argv[3]:
    set_conf(sys.argv[1], "store", "backend", "postgresql")
    set_conf(sys.argv[1], "store", "dsn", sys.argv[3])
EOF
  PORT=$(free_port)
  "$BUILD/bin/pos-central" serve -c "$home/central.conf" --listen "127.0.0.1:$PORT" \
    >"$LOGS/pg-central-$1.log" 2>&1 &
  central_pid=$!
  for _ in $(seq 100); do
    curl -sf --cacert "$home/ca.crt" "https://127.0.0.1:$PORT/v1/health" >/dev/null && return 0
    kill -0 "$central_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "** pos-central ($1) did not start (see $LOGS/pg-central-$1.log)"
  return 1
}

central_down() {
  local rc
  kill -TERM "$central_pid"
  wait "$central_pid"; rc=$?
  central_pid=""
  [ "$rc" -eq 0 ] || { echo "   ** pos-central ($1) exited $rc on SIGTERM"; failed="$failed central-$1"; }
  # One line per request: keep the rest.
  grep -v ' event=request ' "$LOGS/pg-central-$1.log" >"$LOGS/pg-central-$1-events.txt"
  rm -f "$LOGS/pg-central-$1.log"
}

mkdir -p "$LOGS" "$WORK" "$OUT/cache"
echo "== PostgreSQL part (load average $(cut -d' ' -f1-3 /proc/loadavg))"
"$PGCTL" start "$PGDIR" >"$LOGS/pg-cluster.txt" 2>&1
rc=$?
if [ "$rc" -eq 3 ]; then
  echo "   PostgreSQL 15 is not installed (make deps installs it): the PostgreSQL" \
    "benchmarks did not run"
  exit 0
elif [ "$rc" -ne 0 ]; then
  sed 's/^/   /' "$LOGS/pg-cluster.txt"
  echo "   ** the PostgreSQL cluster in $PGDIR did not start"
  exit 1
fi
PGSOCK=$(cd "$PGDIR" && pwd -P)
PGPORT_=${PGCTL_PORT:-5432}
SB=${BENCH_PG_SHARED_BUFFERS:-2GB}
pq() { # DB SQL: one value
  "$PG_BIN/psql" -X -q -h "$PGSOCK" -p "$PGPORT_" -U postgres -d "$1" -tAc "$2" 2>/dev/null
}
if [ "$(pq postgres "SHOW shared_buffers")" != "$SB" ]; then
  pq postgres "ALTER SYSTEM SET shared_buffers = '$SB'" >/dev/null &&
    "$PGCTL" stop "$PGDIR" >>"$LOGS/pg-cluster.txt" 2>&1 &&
    "$PGCTL" start "$PGDIR" >>"$LOGS/pg-cluster.txt" 2>&1 ||
    { echo "   ** the cluster did not restart with shared_buffers = $SB"; exit 1; }
fi
echo "   cluster $PGDIR: shared_buffers $(pq postgres "SHOW shared_buffers"), fsync" \
  "$(pq postgres "SHOW fsync"), synchronous_commit $(pq postgres "SHOW synchronous_commit")"
"$BUILD/bin/pos-central" --version 2>/dev/null | head -1 | sed 's/^/   /'
"$PG_BIN/psql" --version 2>/dev/null | sed 's/^/   /'

step pg-floor "$BUILD/bench/pgfloor" "$("$PGCTL" fresh "$PGDIR" pos_floor)" "$S"
# The floor's rows are not needed again.
"$PGCTL" fresh "$PGDIR" pos_floor >/dev/null

pool=$(( S * 30000 > 2000000 ? 2000000 : S * 30000 ))
for b in sqlite postgresql; do
  dsn=""
  [ "$b" = postgresql ] && dsn=$("$PGCTL" fresh "$PGDIR" pos_bench)
  if ! central_up "$b" "$dsn"; then
    failed="$failed central-$b"
    continue
  fi
  LG=("$BUILD/bench/loadgen" --port "$PORT" --dir "$WORK/$b-term" --pid "$central_pid"
      --conns "$CONNS")
  step "pg-resolve-$b" "${LG[@]}" --route resolve --seconds "$S" --pool "$pool" \
    --label "pg_resolve_$b"
  if [ "$b" = postgresql ]; then
    step pg-baskets "${LG[@]}" --route baskets --seconds "$S" --label pg_baskets
    step pg-baskets-256 "${LG[@]}" --route baskets --seconds "$S" --label pg_baskets_256 \
      --conns 256
  fi
  central_down "$b"
done

if [ "$H10M" = "1" ]; then
  # Loaded once by COPY (a few minutes), then reused: made anew only when
  # no completed load of 10M rows is there (complete = 2: histbench's
  # HB_PG_FORMAT, the rows' present shape).
  if [ "$(pq pos_hist_10m "SELECT items FROM bench_meta WHERE complete = 2")" != 10000000 ]; then
    "$PGCTL" fresh "$PGDIR" pos_hist_10m >/dev/null
  fi
  step pg-history-10M "$BUILD/bench/histbench" --dsn "$("$PGCTL" dsn "$PGDIR" pos_hist_10m)" \
    10000000 200 "$S"
fi

if [ -n "$failed" ]; then
  echo "bench (PostgreSQL): these did not run to the end:$failed"
  exit 1
fi
exit 0

#!/usr/bin/env bash
# The resolve tail at half load, several runs of one build: a closed-loop
# run finds the capacity, then RUNS open-loop runs at half of it, each
# printing p50/p99/p99.9, server CPU per request (the keys process's part)
# and the cores other processes took. Used for the trials in
# docs/performance.md ("the tail at half load"); not part of make bench.
#
# usage: tests/bench/halfload.sh [BIN_DIR] [RUNS] [SECONDS] [extra central.conf lines]
#   BIN_DIR: where pos-central is (default $BUILD/bin); loadgen and
#   cryptofloor come from $BUILD/bench. RATE=N skips the closed-loop run.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BIN=${1:-$BUILD/bin}
RUNS=${2:-3}
S=${3:-6}
EXTRA=${4:-}
CONNS=${CONNS:-64}
W=$(mktemp -d "${TMPDIR:-/tmp}/halfload.XXXXXX")
PY=/usr/bin/python3
pid=""
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT

"$BIN/pos-central" setup "$W/central" >"$W/setup.log" 2>&1 &&
  "$BIN/pos-central" terminal-cert "$W/central" --store S1 --terminal T1 --out "$W/term" \
    >>"$W/setup.log" 2>&1 || { cat "$W/setup.log"; exit 1; }
sed -i 's/^log_level *=.*/log_level = warn/' "$W/central/central.conf"
grep -q '^log_level' "$W/central/central.conf" ||
  sed -i 's/^\[central\]/[central]\nlog_level = warn/' "$W/central/central.conf"
[ -n "$EXTRA" ] && printf '%b\n' "$EXTRA" | while IFS= read -r l; do
  k=${l%% *}; sed -i "s|^$k *=.*|$l|" "$W/central/central.conf"; done
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN/pos-central" serve -c "$W/central/central.conf" --listen "127.0.0.1:$PORT" >"$W/central.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf --cacert "$W/central/ca.crt" "https://127.0.0.1:$PORT/v1/health" >/dev/null && break
  sleep 0.1
done
LG=("$BUILD/bench/loadgen" --port "$PORT" --dir "$W/term" --pid "$pid" --conns "$CONNS")
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$BUILD/bench/cryptofloor" 2 | grep -i 'per resolve\|floor' | head -2
rate=${RATE:-}
if [ -z "$rate" ]; then
  "${LG[@]}" --route resolve --seconds "$S" --pool $(( S * 30000 )) --label resolve | grep -v '^RESULT' | tee "$W/closed.log"
  rps=$(sed -n 's/.* \([0-9]*\) req\/s over.*/\1/p' "$W/closed.log" | head -1)
  rate=$(( ${rps:-2000} / 2 ))
fi
# switches PID: voluntary and involuntary context switches of its threads.
switches() {
  cat /proc/"$1"/task/*/status 2>/dev/null |
    awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v + 0, n + 0}'
}
# schedstat PID...: one line per thread: pid/tid comm run_ns runqueue_wait_ns slices
schedstat() {
  for p in "$@"; do
    for t in /proc/"$p"/task/*; do
      printf '%s/%s %s %s\n' "$p" "${t##*/}" "$(tr ' ' '_' <"$t/comm")" "$(cat "$t/schedstat")"
    done 2>/dev/null
  done
}
kpid=$(pgrep -P "$pid" | head -1)
for i in $(seq "$RUNS"); do
  schedstat "$pid" "$kpid" >"$W/ss0"
  read -r sv sn <<<"$(switches "$pid")"; read -r kv kn <<<"$(switches "$kpid")"
  "${LG[@]}" --route resolve --seconds "$S" --rate "$rate" --pool $(( S * rate + 1000 )) \
    --label resolve_open | grep -v '^RESULT' | tee "$W/open.log"
  read -r sv2 sn2 <<<"$(switches "$pid")"; read -r kv2 kn2 <<<"$(switches "$kpid")"
  n=$(sed -n 's/.*(\([0-9]*\) answered).*/\1/p' "$W/open.log" | head -1)
  awk -v n="${n:-1}" -v a=$((sv2 - sv)) -v b=$((sn2 - sn)) -v c=$((kv2 - kv)) -v d=$((kn2 - kn)) \
    'BEGIN {printf "  switches per request: serve %.2f voluntary %.2f involuntary; keys %.2f / %.2f\n", a/n, b/n, c/n, d/n}'
  # Per thread over the run: CPU, time ready but waiting for a core (the
  # scheduler's share of the tail), and per request.
  schedstat "$pid" "$kpid" >"$W/ss1"
  awk -v n="${n:-1}" -v s="$S" 'NR == FNR {r[$1] = $3; w[$1] = $4; next}
    ($1 in r) && $3 - r[$1] > s * 1e7 {
      printf "  thread %-22s %-16s run %5.1f%%  waits for a core %5.1f%%  (%.1f us/req run, %.1f us/req waiting)\n",
        $1, $2, ($3 - r[$1]) / s / 1e7, ($4 - w[$1]) / s / 1e7, ($3 - r[$1]) / n / 1e3, ($4 - w[$1]) / n / 1e3}' \
    "$W/ss0" "$W/ss1"
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"

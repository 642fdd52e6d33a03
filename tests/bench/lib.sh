# What make bench's scripts share (run.sh, pg.sh): sourced, never run.
# Needs LOGS and PY set; keeps failed (steps that did not run to the end)
# and central_pid (a central to stop on exit).
failed=""
central_pid=""

cleanup() {
  if [ -n "$central_pid" ] && kill -0 "$central_pid" 2>/dev/null; then
    kill -TERM "$central_pid" 2>/dev/null
    wait "$central_pid" 2>/dev/null
  fi
}
trap cleanup EXIT

# step NAME CMD...: runs one benchmark, its output shown and kept in
# $LOGS/NAME.log; a non-zero exit is recorded as a crash.
step() {
  local name=$1; shift
  echo "== $name (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  "$@" >"$LOGS/$name.log" 2>&1
  local rc=$?
  grep -v '^RESULT ' "$LOGS/$name.log" | sed 's/^/   /'
  if [ "$rc" -ne 0 ]; then
    echo "   ** $name exited $rc"
    failed="$failed $name"
  fi
}

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

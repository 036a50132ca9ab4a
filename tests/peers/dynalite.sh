#!/bin/bash
# dynalite (npm, a DynamoDB implementation on LevelDB) on loopback: a real DynamoDB peer for
# tests. The package is pinned by tests/peers/npm/package-lock.json and installed by
# `scripts/install-deps.sh --test` (or by this script when node_modules is missing).
# Everything lives under DIR; the LevelDB store is DIR/db, so stop + start keeps the data
# (a real outage, not a wipe).
#
# Usage:
#   dynalite.sh start DIR   start on a free loopback port (the same one again when DIR/env
#                           names one, so a restart after `stop-server` keeps the endpoint);
#                           prints "endpoint=http://127.0.0.1:PORT" and writes DIR/env
#                           (DYNALITE_ENDPOINT, DYNALITE_PORT, DYNALITE_PID, WATCHDOG_PID).
#                           With DYNALITE_WATCH_PID=<pid>, a watchdog stops dynalite when
#                           that process is gone.
#   dynalite.sh stop DIR    stop dynalite (SIGTERM, then SIGKILL) and its watchdog; DIR/env
#                           is removed.
#   dynalite.sh outage DIR  stop dynalite but keep DIR/env and the data: `start DIR` brings
#                           it back on the same port.
# dynalite does not check signatures; any access key is accepted.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
NPM_DIR="$HERE/npm"
CLI="$NPM_DIR/node_modules/dynalite/cli.js"

die() {
  echo "dynalite.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: dynalite.sh start|stop|outage DIR" >&2
  exit 2
}

free_port() {
  perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)
      or die "bind: $!\n";
    print $s->sockport, "\n";'
}

alive() {
  [ -n "$1" ] || return 1
  [ -r "/proc/$1/status" ] || return 1
  ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null
}

is_ours() {
  alive "$1" || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$DIR/db"
}

stop_pid() {
  pid="$1"
  is_ours "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while alive "$pid" && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ $i -lt 100 ]; do
      sleep 0.05
      i=$((i + 1))
    done
  fi
  ! alive "$pid" || die "dynalite ($pid) does not exit"
}

write_env() {
  cat >"$DIR/env" <<EOT
DYNALITE_ENDPOINT=http://127.0.0.1:$PORT
DYNALITE_PORT=$PORT
DYNALITE_PID=$PID
WATCHDOG_PID=${WATCHDOG_PID:-}
EOT
}

ensure_installed() {
  command -v node >/dev/null || die "node not found (run: scripts/install-deps.sh --test)"
  [ -f "$CLI" ] && return 0
  command -v npm >/dev/null || die "npm not found (run: scripts/install-deps.sh --test)"
  echo "dynalite.sh: installing dynalite from $NPM_DIR/package-lock.json" >&2
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --ignore-scripts >/dev/null 2>&1) ||
    die "npm ci in $NPM_DIR failed"
}

cmd_start() {
  ensure_installed
  PORT="" PID="" WATCHDOG_PID=""
  if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/env"
    PORT="${DYNALITE_PORT:-}"
    PID="${DYNALITE_PID:-}"
    if is_ours "$PID"; then die "dynalite already runs in $DIR ($PID)"; fi
  fi
  [ -n "$PORT" ] || PORT=$(free_port)
  mkdir -p "$DIR/db"
  node "$HERE/dynalite_server.js" "$CLI" --host 127.0.0.1 --port "$PORT" --path "$DIR/db" \
    --createTableMs 0 \
    --deleteTableMs 0 --updateTableMs 0 </dev/null >>"$DIR/dynalite.log" 2>&1 &
  PID=$!
  if [ -n "${DYNALITE_WATCH_PID:-}" ] && ! alive "${WATCHDOG_PID:-}"; then
    watch="$DYNALITE_WATCH_PID"
    self="$HERE/dynalite.sh"
    (
      trap '' HUP INT
      while [ -d "/proc/$watch" ] && [ -f "$DIR/env" ]; do sleep 0.5; done
      [ -d "/proc/$watch" ] || "$self" stop "$DIR"
    ) </dev/null >/dev/null 2>&1 &
    WATCHDOG_PID=$!
  fi
  write_env
  i=0
  # Any answer (dynalite says 400 to an unsigned GET) means it listens.
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://127.0.0.1:$PORT/" 2>/dev/null)" != 000 ]; do
    alive "$PID" || { tail -n 20 "$DIR/dynalite.log" >&2; die "dynalite exited during start"; }
    i=$((i + 1))
    [ $i -lt 400 ] || die "dynalite does not answer on port $PORT"
    sleep 0.05
  done
  echo "endpoint=http://127.0.0.1:$PORT"
}

cmd_outage() {
  [ -f "$DIR/env" ] || die "no dynalite in $DIR"
  # shellcheck disable=SC1091
  . "$DIR/env"
  stop_pid "${DYNALITE_PID:-}"
}

cmd_stop() {
  DYNALITE_PID="" WATCHDOG_PID=""
  if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/env"
  fi
  stop_pid "${DYNALITE_PID:-}"
  rm -f "$DIR/env"
  if [ -n "${WATCHDOG_PID:-}" ] && [ "$WATCHDOG_PID" != "$PPID" ] && alive "$WATCHDOG_PID" &&
    tr '\0' ' ' <"/proc/$WATCHDOG_PID/cmdline" 2>/dev/null | grep -qF dynalite.sh; then
    kill "$WATCHDOG_PID" 2>/dev/null || true
  fi
  return 0
}

[ $# -eq 2 ] || usage
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
outage) cmd_outage ;;
*) usage ;;
esac

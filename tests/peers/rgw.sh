#!/bin/bash
# A throw-away single-node Ceph cluster (one monitor, one memstore OSD, no manager) with
# radosgw on loopback: a real S3 implementation for tests. Everything lives under DIR;
# nothing touches /etc/ceph. See docs in /work/shared/TESTING.md ("S3: Ceph RADOS Gateway").
#
# Usage:
#   rgw.sh start DIR          start the cluster; prints
#                             "endpoint=http://127.0.0.1:PORT access_key=... secret_key=..."
#                             and writes DIR/env (shell-sourceable: RGW_ENDPOINT, RGW_PORT,
#                             RGW_ACCESS_KEY, RGW_SECRET_KEY, RGW_PID, MON_PID, OSD_PID).
#                             With RGW_WATCH_PID=<pid> in the environment, a watchdog stops
#                             the cluster when that process is gone (a crashed test leaves
#                             no daemon behind).
#   rgw.sh stop DIR           stop every daemon of the cluster and wait until they are gone.
#   rgw.sh stop-gateway DIR   stop radosgw only (a real S3 outage; data is kept).
#   rgw.sh start-gateway DIR  start radosgw again on the same port, wait until it answers.
#   rgw.sh freeze DIR         SIGSTOP radosgw (a hang: connections accepted, no answer).
#   rgw.sh thaw DIR           SIGCONT radosgw.
# Exit status 0 on success; on failure a message on stderr and the tail of the logs.
# Requires: radosgw ceph-mon ceph-osd ceph-common (installed here when missing and root),
# curl, perl (perl-base, for the free-port check).
set -eu

ACCESS_KEY="MACHUBTESTACCESSKEY0"
SECRET_KEY="machubTestSecretKey0000000000000000000000"
CEPH_PACKAGES="radosgw ceph-mon ceph-osd ceph-common"

die() {
  echo "rgw.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: rgw.sh start|stop|stop-gateway|start-gateway|freeze|thaw DIR" >&2
  exit 2
}

install_if_missing() {
  missing=""
  for p in $CEPH_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing packages:$missing (run: sudo apt-get install -y --no-install-recommends $CEPH_PACKAGES)"
  echo "rgw.sh: installing$missing" >&2
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
    >/dev/null || die "apt-get install$missing failed"
}

# A free loopback TCP port: the kernel picks one in a bind attempt (the listener is
# closed again; the small window before the daemon binds it is accepted for tests).
free_port() {
  perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1)
      or die "bind: $!\n";
    print $s->sockport, "\n";'
}

# True while PID runs (a zombie counts as gone: it has exited, only its parent has not
# reaped it yet, and daemons started here are reparented to an init that may be slow).
alive() {
  [ -n "$1" ] || return 1
  [ -r "/proc/$1/status" ] || return 1
  ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$1/status" 2>/dev/null
}

# Is PID the daemon we started (guards against a recycled PID)?
is_ours() {
  alive "$1" || return 1
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$CONF"
}

# stop_pid PID NAME: SIGTERM, wait up to 10 s, then SIGKILL and wait.
stop_pid() {
  pid="$1"
  is_ours "$pid" || return 0
  kill -CONT "$pid" 2>/dev/null || true  # a frozen daemon cannot handle SIGTERM
  kill -TERM "$pid" 2>/dev/null || true
  i=0
  while alive "$pid" && [ $i -lt 200 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  if alive "$pid"; then
    echo "rgw.sh: $2 ($pid) ignored SIGTERM, killing" >&2
    kill -KILL "$pid" 2>/dev/null || true
    i=0
    while alive "$pid" && [ $i -lt 100 ]; do
      sleep 0.05
      i=$((i + 1))
    done
  fi
  ! alive "$pid" || die "$2 ($pid) does not exit"
}

show_logs() {
  for f in "$DIR"/log/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 15 "$f" >&2
  done
}

write_conf() {
  cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT2,v1:127.0.0.1:$MON_PORT1]
ms bind ipv6 = false
ms bind ipv4 = true
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = true
mon cluster log file = $DIR/log/cluster.log
crash dir = $DIR/crash
exporter sock dir = $DIR/run
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
paxos propose interval = 0.01
paxos min wait = 0.001
mon osd reporter subtree level = osd
mon data avail warn = 1
mon data avail crit = 0
debug ms = 0

[mon]
mon data = $DIR/mon.\$id
mon initial members = a

[osd]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
osd data = $DIR/osd.\$id
osd objectstore = memstore
memstore device bytes = 2147483648
osd fast shutdown = false
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
rgw data = $DIR/rgw
rgw dns name = localhost
rgw enable usage log = false
rgw thread pool size = 32
EOF
}

write_env() {
  cat >"$DIR/env" <<EOF
RGW_ENDPOINT=http://127.0.0.1:$RGW_PORT
RGW_PORT=$RGW_PORT
RGW_ACCESS_KEY=$ACCESS_KEY
RGW_SECRET_KEY=$SECRET_KEY
RGW_PID=$RGW_PID
MON_PID=$MON_PID
OSD_PID=$OSD_PID
WATCH_PID=${WATCH_PID:-}
WATCHDOG_PID=${WATCHDOG_PID:-}
EOF
}

load_env() {
  [ -f "$DIR/env" ] || die "no cluster in $DIR (missing $DIR/env)"
  # shellcheck disable=SC1091
  . "$DIR/env"
  [ -f "$CONF" ] || die "missing $CONF"
}

# Start radosgw in the background and wait until GET / answers 200.
start_gateway() {
  radosgw -c "$CONF" -n client.rgw.a -f </dev/null >>"$DIR/log/rgw.out" 2>&1 &
  RGW_PID=$!
  write_env  # before any wait: whoever stops the cluster must know every daemon
  i=0
  until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
    "http://127.0.0.1:$RGW_PORT/" 2>/dev/null)" = 200 ]; do
    alive "$RGW_PID" || die "radosgw exited during start"
    is_ours "$MON_PID" || die "ceph-mon is gone"
    watched_gone && die "the watched process ${GUARD_PID} is gone"
    i=$((i + 1))
    [ $i -lt 600 ] || die "radosgw does not answer on port $RGW_PORT"
    sleep 0.05
  done
}

# True when `start` was given a process to watch (RGW_WATCH_PID) and it has exited.
watched_gone() {
  [ -n "${GUARD_PID:-}" ] && [ ! -d "/proc/$GUARD_PID" ]
}

cmd_start() {
  install_if_missing
  for b in ceph-authtool monmaptool ceph-mon ceph-osd ceph radosgw radosgw-admin curl perl; do
    command -v "$b" >/dev/null || die "$b not found"
  done
  if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/env"
    if is_ours "${MON_PID:-}"; then die "a cluster already runs in $DIR"; fi
  fi
  rm -rf "$DIR/mon.a" "$DIR/osd.0" "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/rgw"
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/crash" "$DIR/rgw" "$DIR/osd.0" "$DIR/mon.a"

  FSID=$(cat /proc/sys/kernel/random/uuid)
  OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
  MON_PORT1=$(free_port)
  MON_PORT2=$(free_port)
  RGW_PORT=$(free_port)
  while [ "$MON_PORT2" = "$MON_PORT1" ]; do MON_PORT2=$(free_port); done
  while [ "$RGW_PORT" = "$MON_PORT1" ] || [ "$RGW_PORT" = "$MON_PORT2" ]; do
    RGW_PORT=$(free_port)
  done
  MON_PID="" OSD_PID="" RGW_PID="" WATCHDOG_PID=""
  WATCH_PID="${RGW_WATCH_PID:-}"
  GUARD_PID="$WATCH_PID"
  write_conf
  # Any failure from here on: show the logs and leave no daemon behind.
  trap 'rc=$?; show_logs; cmd_stop || true; exit $rc' EXIT

  # One keyring for every daemon (caps as vstart.sh gives them).
  k="$DIR/keyring"
  ceph-authtool --create-keyring "$k" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' \
    --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n osd.0 --cap mon 'allow profile osd' \
    --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$k" --gen-key -n client.rgw.a --cap mon 'allow rw' --cap osd 'allow rwx' \
    --cap mgr 'allow rw' >/dev/null

  monmaptool --create --fsid "$FSID" \
    --addv a "[v2:127.0.0.1:$MON_PORT2,v1:127.0.0.1:$MON_PORT1]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$k" \
    >>"$DIR/log/mkfs.out" 2>&1 || die "ceph-mon --mkfs failed"
  ceph-mon -c "$CONF" -i a -f </dev/null >>"$DIR/log/mon.out" 2>&1 &
  MON_PID=$!
  write_env

  # The watchdog: stops the cluster when the test process that started it is gone.
  if [ -n "$WATCH_PID" ]; then
    self="$(readlink -f "$0")"
    (
      trap '' HUP INT
      while [ -d "/proc/$WATCH_PID" ] && [ -f "$DIR/env" ] && is_ours "$MON_PID"; do
        sleep 0.5
      done
      [ -d "/proc/$WATCH_PID" ] || "$self" stop "$DIR"
    ) </dev/null >/dev/null 2>&1 &
    WATCHDOG_PID=$!
    write_env
  fi

  # `ceph` talks to the monitor; the first call waits for it to form a quorum.
  C="ceph -c $CONF --connect-timeout 30"
  $C osd new "$OSD_UUID" 0 >/dev/null 2>>"$DIR/log/ceph.out" || die "ceph osd new failed"
  watched_gone && die "the watched process ${GUARD_PID} is gone"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" >>"$DIR/log/mkfs.out" 2>&1 ||
    die "ceph-osd --mkfs failed"
  ceph-osd -c "$CONF" -i 0 -f </dev/null >>"$DIR/log/osd.out" 2>&1 &
  OSD_PID=$!
  write_env

  start_gateway

  radosgw-admin -c "$CONF" user create --uid=test --display-name=test \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>>"$DIR/log/admin.out" ||
    die "radosgw-admin user create failed"
  trap - EXIT

  echo "endpoint=http://127.0.0.1:$RGW_PORT access_key=$ACCESS_KEY secret_key=$SECRET_KEY"
}

# Daemon PIDs come from DIR/env and from the daemons' own pid files, so a stop that races
# with a start in progress (the watchdog) still finds every daemon.
cmd_stop() {
  RGW_PID="" OSD_PID="" MON_PID="" WATCHDOG_PID=""
  if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    . "$DIR/env"
  fi
  for spec in "radosgw:${RGW_PID:-}:client.rgw.a" "ceph-osd:${OSD_PID:-}:osd.0" \
    "ceph-mon:${MON_PID:-}:mon.a"; do
    name="${spec%%:*}"
    rest="${spec#*:}"
    stop_pid "${rest%%:*}" "$name"
    pidfile="$DIR/run/${rest#*:}.pid"
    [ -f "$pidfile" ] && stop_pid "$(cat "$pidfile" 2>/dev/null)" "$name"
  done
  rm -f "$DIR/env"
  # The watchdog would notice within 0.5 s; end it now unless it is the one stopping us.
  if [ -n "${WATCHDOG_PID:-}" ] && [ "$WATCHDOG_PID" != "$PPID" ] && alive "$WATCHDOG_PID" &&
    tr '\0' ' ' <"/proc/$WATCHDOG_PID/cmdline" 2>/dev/null | grep -qF rgw.sh; then
    kill "$WATCHDOG_PID" 2>/dev/null || true
  fi
  return 0
}

cmd_stop_gateway() {
  load_env
  stop_pid "$RGW_PID" radosgw
}

cmd_start_gateway() {
  load_env
  if is_ours "$RGW_PID"; then die "radosgw already runs ($RGW_PID)"; fi
  start_gateway
}

[ $# -eq 2 ] || usage
mkdir -p "$2"
DIR="$(cd "$2" && pwd)"
CONF="$DIR/ceph.conf"
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
stop-gateway) cmd_stop_gateway ;;
start-gateway) cmd_start_gateway ;;
freeze)
  load_env
  is_ours "$RGW_PID" || die "radosgw is not running"
  kill -STOP "$RGW_PID"
  ;;
thaw)
  load_env
  is_ours "$RGW_PID" || die "radosgw is not running"
  kill -CONT "$RGW_PID"
  ;;
*) usage ;;
esac

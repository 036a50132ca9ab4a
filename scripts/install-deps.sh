#!/bin/sh
# Installs the Debian 12 packages machub needs to build and run; with --test also what the
# test suite needs (clang for sanitizers, GoogleTest, and Ceph's RADOS Gateway as the real
# S3 peer); with --bench also PostgreSQL 15 for bench/compare_postgres.sh. Safe to run
# again: when everything is present, apt is not touched.
set -eu

PACKAGES="build-essential cmake ninja-build pkg-config
  libboost-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev
  libsqlite3-dev libssl-dev libcurl4-openssl-dev zlib1g-dev libgtest-dev
  libyaml-cpp-dev util-linux procps curl ca-certificates"
if [ "${1:-}" = "--test" ]; then
  PACKAGES="$PACKAGES clang libclang-rt-dev sqlite3 openssl python3 sudo dpkg-dev s3cmd
  radosgw ceph-mon ceph-osd ceph-common"
fi
# --bench: bench/compare_postgres.sh's PostgreSQL 15 (initdb, postgres, pgbench).
if [ "${1:-}" = "--bench" ]; then
  PACKAGES="$PACKAGES python3 postgresql-15"
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "machub: installing$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null

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
  PACKAGES="$PACKAGES clang clang-format libclang-rt-dev sqlite3 openssl python3 sudo dpkg-dev s3cmd
  radosgw ceph-mon ceph-osd ceph-common awscli chromium faketime tzdata"
  # node + npm for dynalite (the DynamoDB peer); a node already on PATH is kept.
  command -v node >/dev/null 2>&1 || PACKAGES="$PACKAGES nodejs npm"
fi
# --bench: bench/compare_postgres.sh's PostgreSQL 15 (initdb, postgres, pgbench) and wrk.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES="$PACKAGES python3 postgresql-15 wrk"
fi

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

# --test: dynalite and playwright-core from npm, pinned by tests/peers/npm/package-lock.json.
# playwright-core never downloads a browser (the test drives Debian's /usr/bin/chromium);
# PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD makes that explicit. Install scripts are skipped:
# dynalite's LevelDB binding (classic-level) ships prebuilt binaries for linux x64 and arm64
# inside the npm package and node-gyp-build loads them; nothing else is downloaded.
install_test_peers() {
  [ "${1:-}" = "--test" ] || return 0
  npm_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/peers/npm"
  [ -f "$npm_dir/node_modules/dynalite/cli.js" ] &&
    [ -f "$npm_dir/node_modules/playwright-core/package.json" ] && return 0
  echo "machub: installing dynalite and playwright-core (npm ci in $npm_dir)" >&2
  (cd "$npm_dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts >/dev/null)
}

if [ -z "$missing" ]; then
  install_test_peers "${1:-}"
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "machub: installing$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
install_test_peers "${1:-}"

#!/bin/sh
# Installs what a cross build of machub needs on Debian 12 (amd64 host), once:
#   - the cross compiler (g++-aarch64-linux-gnu or g++-arm-linux-gnueabihf),
#   - qemu-user (to run the foreign binaries and their unit tests),
#   - the foreign architecture's -dev packages through dpkg multiarch.
# Usage: scripts/cross-deps.sh arm64|armhf
# Idempotent: every package is checked with dpkg-query first; when all are present,
# neither dpkg --add-architecture nor apt is touched. Needs root (or sudo) to install.
set -eu

arch="${1:-arm64}"
case "$arch" in
  arm64) triplet="aarch64-linux-gnu" ;;
  armhf) triplet="arm-linux-gnueabihf" ;;
  *) echo "cross-deps.sh: unknown architecture '$arch' (arm64 or armhf)" >&2; exit 2 ;;
esac

# Host tools. Header-only libraries that are Architecture: all (nlohmann-json, CLI11) serve
# every target; Boost's headers are the same files on every architecture but the package is
# Multi-Arch: same, so the foreign copy is installed too (CMake then finds its config files
# in /usr/lib/<triplet>/cmake, the same way as for the other libraries).
# libyaml-cpp-dev is the host's, for the host tool machub-greengrass (tools/greengrass);
# the device build leaves the Greengrass recipe tools out (MACHUB_GREENGRASS_TOOLS=OFF), so
# no foreign yaml-cpp is needed.
HOST_PACKAGES="g++-$triplet qemu-user cmake ninja-build pkg-config zip unzip curl file
  nlohmann-json3-dev libcli11-dev libyaml-cpp-dev"
FOREIGN_PACKAGES="libc6-dev libstdc++-12-dev libboost-dev libsqlite3-dev libssl-dev
  libcurl4-openssl-dev zlib1g-dev libgtest-dev libtomlplusplus-dev"

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for p in $HOST_PACKAGES; do
  installed "$p" || missing="$missing $p"
done
for p in $FOREIGN_PACKAGES; do
  installed "$p:$arch" || missing="$missing $p:$arch"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
added=0
if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
  echo "cross-deps.sh: dpkg --add-architecture $arch" >&2
  $SUDO dpkg --add-architecture "$arch"
  added=1
fi
echo "cross-deps.sh: installing$missing" >&2
# apt-get update fetches the new architecture's package lists (a few MB); a repository that
# does not carry the architecture makes apt warn, which is harmless.
$SUDO apt-get update -qq || echo "cross-deps.sh: apt-get update reported errors (continuing)" >&2
# A Multi-Arch: same library must have the same version for every architecture, so apt may
# upgrade the host's copy (e.g. libssl-dev) to the version it installs for $arch.
# shellcheck disable=SC2086
if ! DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
  $missing >/dev/null; then
  # Seen here: a mirror serving an inconsistent index for one architecture ("File has
  # unexpected size ... Mirror sync in progress?"); the foreign -dev packages then cannot
  # match the host's versions. Leave apt as it was rather than half-configured.
  if [ "$added" -eq 1 ] && ! dpkg -l 2>/dev/null | grep -q ":$arch "; then
    $SUDO dpkg --remove-architecture "$arch" || true
  fi
  echo "cross-deps.sh: apt-get install failed for $arch (see apt's message above; a mirror" \
    "in sync can cause it: retry later)" >&2
  exit 1
fi

#!/bin/sh
# Installs what is missing, builds with tests (and failpoints) and runs every test.
# Tests that need root (a small tmpfs for the disk-full test) skip with a message
# otherwise. MACHUB_PRESET=asan runs the same suite under ASan+UBSan.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh --test
preset="${MACHUB_PRESET:-dev}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
# The SigV4 vector suite lives beside the repository in ../shared when present.
if [ -z "${MACHUB_SIGV4_SUITE:-}" ] && [ -d ../shared/sigv4-test-suite ]; then
  MACHUB_SIGV4_SUITE="$(cd ../shared/sigv4-test-suite && pwd)"
  export MACHUB_SIGV4_SUITE
fi
ctest --preset "$preset" -j2 --timeout 900

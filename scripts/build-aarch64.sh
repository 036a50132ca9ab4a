#!/bin/sh
# Cross-builds machub for 64-bit ARM Linux (Raspberry Pi 4B) with Debian's cross toolchain,
# runs the unit tests and a hub smoke test under qemu-user, and packs the result.
#
# Usage: scripts/build-aarch64.sh [--arch arm64|armhf] [--no-test] [--smoke-only] [--no-pack]
#                                 [--jobs N]
#   --arch armhf   32-bit ARMv7 hard-float instead (Raspberry Pi OS 32-bit); same as
#                  scripts/build-armhf.sh
#   --no-test      build and pack only
#   --smoke-only   build only the hub and run its smoke test under qemu, not the unit tests
#                  (what the `aarch64` stage of scripts/test.sh runs by default)
#   --no-pack      no zip, no .deb (CI checks the binary, not the packaging)
#   --jobs N       parallel compile jobs (default 2: the machine is shared)
# Environment: MACHUB_CROSS_BUILD_DIR (default build/<arch>-cross), MACHUB_BUILD_TYPE
# (default Release), MACHUB_WERROR=1 (warnings are errors, as in CI).
#
# Produces:
#   build/<arch>-cross/src/app/machub          the binary (with symbols)
#   dist/machub-<version>-linux-<gg-arch>.zip   binary (stripped) + recipe-ready layout:
#     machub-<version>-linux-<gg-arch>/
#       machub                                  stripped binary, mode 0755
#       greengrass/recipes/com.machub.StoreHub-<version>.yaml
#       greengrass/artifacts/com.machub.StoreHub/<version>/machub
#       machub.toml, machub.service, DEPLOY_GREENGRASS.md
#   dist/machub_<version>_<arch>.deb            Debian package (systemd unit, /etc/machub)
#   dist/machub-<version>-linux-<gg-arch>.txt   sizes, RSS under qemu, timings
# where <gg-arch> is the architecture name the Greengrass nucleus reports (aarch64, arm).
#
# Installs what is missing first (scripts/cross-deps.sh; root or sudo). Exit 0 when the
# build, every unit test and the smoke test passed.
set -eu
cd "$(dirname "$0")/.."
root="$(pwd)"

arch="arm64"
run_tests=1
run_unit=1
pack=1
jobs=2
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --no-test) run_tests=0; shift ;;
    --smoke-only) run_unit=0; shift ;;
    --no-pack) pack=0; shift ;;
    --jobs) jobs="$2"; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "build-aarch64.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$arch" in
  arm64) triplet="aarch64-linux-gnu"; gg_arch="aarch64"; qemu="qemu-aarch64" ;;
  armhf) triplet="arm-linux-gnueabihf"; gg_arch="arm"; qemu="qemu-arm" ;;
  *) echo "build-aarch64.sh: --arch arm64 or armhf" >&2; exit 2 ;;
esac

build="${MACHUB_CROSS_BUILD_DIR:-build/$arch-cross}"
build_type="${MACHUB_BUILD_TYPE:-Release}"
t_start=$(date +%s)
say() { echo "build-aarch64.sh [$arch]: $*" >&2; }

# --- 1. dependencies -------------------------------------------------------------------
sh scripts/cross-deps.sh "$arch"
t_deps=$(date +%s)

# --- 2. configure and build --------------------------------------------------------------
toolchain="$root/cmake/toolchains/$triplet.cmake"
werror=OFF
[ "${MACHUB_WERROR:-0}" = 1 ] && werror=ON
cmake -S . -B "$build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
  -DCMAKE_COMPILE_WARNING_AS_ERROR="$werror" \
  -DCMAKE_BUILD_TYPE="$build_type" -DMACHUB_BUILD_TESTS=ON \
  -DMACHUB_GREENGRASS_TOOLS=OFF >/dev/null
# The Greengrass recipe tools (tools/greengrass, with yaml-cpp) are a host-side linter:
# the device binary leaves them out (MACHUB_GREENGRASS_TOOLS=OFF); the host build runs
# their tests (greengrass_check_test, greengrass_cli) and packs nothing of them.
# The unit tests that need no peer process (integration tests start the binary themselves
# with fork/exec, which needs binfmt_misc; they run on the host build instead).
unit_tests="core_test journal_test http_test app_test cloud_test local_sink_test sync_test catalog_test"
targets="machub"
if [ "$run_tests" -eq 1 ] && [ "$run_unit" -eq 1 ]; then
  for t in $unit_tests; do
    # A test target some checkouts do not have yet is skipped, not an error.
    if ninja -C "$build" -t query "$t" >/dev/null 2>&1; then targets="$targets $t"; fi
  done
fi
say "building $targets (-j$jobs)"
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $targets
t_build=$(date +%s)

bin="$build/src/app/machub"
file "$bin" | grep -q "ELF.*$(case $arch in arm64) echo 'ARM aarch64' ;; armhf) echo 'ARM, EABI5' ;; esac)" || {
  say "$bin is not a $arch ELF binary: $(file "$bin")"
  exit 1
}
version="$("$qemu" "$bin" --version | awk '{print $2}')"
[ -n "$version" ] || { say "the binary did not run under $qemu"; exit 1; }
# No recipe tools (and so no yaml-cpp) in the device binary; `machub greengrass` says
# where they are.
if "$triplet-nm" -C "$bin" 2>/dev/null | grep -q 'YAML::'; then
  say "$bin links yaml-cpp (the Greengrass recipe tools belong to the host build)"
  exit 1
fi
if "$qemu" "$bin" greengrass check x.yaml 2>&1 | grep -q 'machub-greengrass'; then :; else
  say "\`machub greengrass\` on the device binary does not point at machub-greengrass"
  exit 1
fi

unit_failed=0
# --- 3. unit tests under qemu-user -------------------------------------------------------
if [ "$run_tests" -eq 1 ] && [ "$run_unit" -eq 1 ]; then
  say "running unit tests under $qemu"
  # Only the unit-test executables were built: the entries of the others (integration
  # tests, tests that start RGW or other peers, the chaos and soak runs, which drive host
  # processes) are excluded by label and name.
  # A failure is reported at the end: the smoke test, the sizes and the package are still
  # worth having.
  (cd "$build" && ctest -j2 --output-on-failure --timeout 600 -LE 'integration|peers|chaos|soak' \
    -E '_NOT_BUILT$|^s3_test$|[Rr]gw') >"$build/unit-tests.log" 2>&1 || {
    grep -A 30 'tests FAILED' "$build/unit-tests.log" >&2 || tail -n 60 "$build/unit-tests.log" >&2
    say "unit tests failed under $qemu (log: $build/unit-tests.log)"
    unit_failed=1
  }
  grep -E 'tests passed|tests failed' "$build/unit-tests.log" >&2 || true
fi
t_test=$(date +%s)

# --- 4. smoke test: the hub under qemu answers /healthz and records a sale ----------------
rss_kb="n/a"
smoke_failed=0
if [ "$run_tests" -eq 1 ]; then
  say "smoke test: machub serve under $qemu"
  rss_kb="$(sh tests/deploy/qemu_smoke.sh "$qemu" "$bin")" || { say "smoke test failed"; smoke_failed=1; }
fi
t_smoke=$(date +%s)

# --- 5. pack --------------------------------------------------------------------------------
if [ "$pack" -eq 0 ]; then
  t_end=$(date +%s)
  echo "rss_idle_kb_under_qemu: $rss_kb (VmRSS of the $qemu process: an upper bound)"
  echo "seconds: deps $((t_deps - t_start)), build $((t_build - t_deps)), unit tests $((t_test - t_build)), smoke $((t_smoke - t_test)), total $((t_end - t_start))"
  if [ "$unit_failed" -ne 0 ] || [ "$smoke_failed" -ne 0 ]; then
    say "FAILED (unit tests: $unit_failed, smoke test: $smoke_failed)"
    exit 1
  fi
  say "OK (not packed)"
  exit 0
fi
name="machub-$version-linux-$gg_arch"
stage="$build/dist/$name"
rm -rf "$stage"
mkdir -p "$stage" dist
"$triplet-strip" -o "$stage/machub" "$bin"
chmod 0755 "$stage/machub"
MACHUB_GG_ARCHES="$gg_arch=$stage/machub" sh scripts/greengrass-build.sh --out "$stage/greengrass" \
  --version "$version" --arch "$gg_arch" --no-build >/dev/null
rm -rf "$stage/greengrass/s3"  # the upload tree of greengrass-build.sh; the zip is per device
cp deploy/machub.toml deploy/systemd/machub.service docs/DEPLOY_GREENGRASS.md "$stage/"
rm -f "dist/$name.zip"
(cd "$build/dist" && zip -qr -X "$root/dist/$name.zip" "$name")
# The Debian package for the same architecture (cmake/packaging.cmake; explicit Depends).
rm -f "$build"/cpack/machub_*.deb
(cd "$build" && cpack -G DEB -B "$root/$build/cpack" >"$root/$build/cpack.log" 2>&1) || {
  tail -n 20 "$build/cpack.log" >&2
  say "cpack failed"
  exit 1
}
cp "$build"/cpack/machub_*_"$arch".deb dist/
size_full=$(stat -c %s "$bin")
size_stripped=$(stat -c %s "$stage/machub")
size_zip=$(stat -c %s "dist/$name.zip")
t_end=$(date +%s)
{
  echo "artifact: dist/$name.zip ($size_zip bytes), $(ls dist/machub_*_"$arch".deb)"
  echo "binary: $size_full bytes with symbols, $size_stripped bytes stripped ($build_type)"
  echo "rss_idle_kb_under_qemu: $rss_kb (VmRSS of the $qemu process: an upper bound)"
  echo "seconds: deps $((t_deps - t_start)), build $((t_build - t_deps)), unit tests $((t_test - t_build)), smoke $((t_smoke - t_test)), pack $((t_end - t_smoke)), total $((t_end - t_start))"
} | tee "dist/$name.txt"
if [ "$unit_failed" -ne 0 ] || [ "$smoke_failed" -ne 0 ]; then
  say "FAILED (unit tests: $unit_failed, smoke test: $smoke_failed)"
  exit 1
fi
say "OK"

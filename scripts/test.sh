#!/bin/sh
# Installs what is missing, builds and runs every test. This is what CI runs (.ci/run).
#
# Stages, in order (MACHUB_TEST_STAGES="dev asan" runs a subset):
#   dev   the format check (clang-format --dry-run -Werror on every tracked C++ file), then
#         GCC, Debug + failpoints: the build, clang-tidy on the production sources
#         (scripts/tidy.sh: the checks of .clang-tidy, every warning an error; about 4 minutes
#         on 2 cores), then every unit, integration, peer (RGW), deploy, chaos and soak test.
#   asan  clang, ASan + UBSan: the unit, integration and peer tests again (not the deploy,
#         chaos and soak runs, which the dev stage covers with the same code), then every
#         libFuzzer target for MACHUB_FUZZ_SECONDS (default 15) each from the same build.
#   tsan  clang, ThreadSanitizer: the journal, uploader and server tests (label `tsan`).
#   aarch64  the Raspberry Pi build: cross-compiles `machub` for arm64 with Debian's cross
#         toolchain (scripts/cross-deps.sh installs it) and runs its smoke test under
#         qemu-aarch64 (tests/deploy/qemu_smoke.sh: /healthz, a sale, its retry, SIGTERM).
#         MACHUB_AARCH64_UNIT_TESTS=1 also cross-builds the unit tests and runs them under
#         qemu (about 15 more minutes on 2 cores: not in CI by default, see
#         docs/BENCHMARKS.md "aarch64").
# Every build here treats compiler warnings as errors (CMAKE_COMPILE_WARNING_AS_ERROR,
# MACHUB_WERROR=1 for the cross build): the code base builds warning-free with GCC 12 and
# Clang 14, and a new warning fails CI instead of scrolling by.
# Tests that need root (tmpfs, ggc_user) skip with a message otherwise.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh --test
stages="${MACHUB_TEST_STAGES:-dev asan tsan aarch64}"
jobs="$(nproc)"

stage() {
  printf '\n==== %s: %s (%s)\n' "$1" "$2" "$(date -u +%H:%M:%S)"
}

for s in $stages; do
  started=$(date +%s)
  case "$s" in
    dev)
      stage dev "format check (.clang-format)"
      git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror
      stage dev "build and run every test"
      cmake --preset dev -DCMAKE_COMPILE_WARNING_AS_ERROR=ON > /dev/null
      cmake --build --preset dev -j"$jobs"
      stage dev "clang-tidy (.clang-tidy, every warning an error) on the production sources"
      sh scripts/tidy.sh build/dev
      stage dev "run every test"
      ctest --preset dev -j2 --timeout 900
      ;;
    asan)
      stage asan "ASan + UBSan: unit, integration and peer tests"
      cmake --preset asan -DCMAKE_COMPILE_WARNING_AS_ERROR=ON > /dev/null
      cmake --build --preset asan -j"$jobs"
      # Leaks fail the run; a report names the first 30 frames.
      ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:malloc_context_size=30" \
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
        ctest --preset asan -j2 --timeout 900 -LE 'deploy|chaos|soak'
      stage asan "libFuzzer targets, ${MACHUB_FUZZ_SECONDS:-15} s each"
      FUZZ_BUILD_DIR=build/asan FUZZ_NO_BUILD=1 FUZZ_JOBS=2 \
        bash fuzz/run.sh "${MACHUB_FUZZ_SECONDS:-15}"
      ;;
    tsan)
      stage tsan "ThreadSanitizer: journal, uploader and server tests"
      cmake --preset tsan -DCMAKE_COMPILE_WARNING_AS_ERROR=ON > /dev/null
      cmake --build --preset tsan -j"$jobs" --target journal_test sync_test http_test
      TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
        ctest --preset tsan -j2 --timeout 900 -L tsan
      ;;
    aarch64)
      stage aarch64 "cross-build for arm64, smoke test under qemu-aarch64"
      if [ "${MACHUB_AARCH64_UNIT_TESTS:-0}" = 1 ]; then
        MACHUB_WERROR=1 sh scripts/build-aarch64.sh --arch arm64 --no-pack --jobs "$jobs"
      else
        MACHUB_WERROR=1 sh scripts/build-aarch64.sh --arch arm64 --smoke-only --no-pack \
          --jobs "$jobs"
      fi
      ;;
    *)
      echo "unknown stage '$s' (dev, asan, tsan, aarch64)" >&2
      exit 2
      ;;
  esac
  echo "==== $s: done in $(( $(date +%s) - started )) s"
done

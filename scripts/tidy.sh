#!/bin/sh
# Runs clang-tidy (the checks of .clang-tidy, every warning an error) on every production
# source: src/ and tools/, not tests, fuzz targets or benchmarks. Needs a configured build
# with compile_commands.json (default build/dev, as `cmake --preset dev` leaves it).
#
#   scripts/tidy.sh [BUILD_DIR]      MACHUB_TIDY_JOBS: parallel files (default: nproc)
#
# Exit 0 when clean; otherwise the warnings are printed and the exit status is 1.
set -eu
cd "$(dirname "$0")/.."
build="${1:-build/dev}"
[ -f "$build/compile_commands.json" ] || {
  echo "tidy.sh: no $build/compile_commands.json (configure the build first)" >&2
  exit 2
}
jobs="${MACHUB_TIDY_JOBS:-$(nproc)}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# --quiet drops the "N warnings generated" chatter; the exit status of xargs is non-zero
# when any clang-tidy run failed (WarningsAsErrors turns every warning into a failure).
files=$(git ls-files 'src/*.cc' 'tools/*.cc' | grep -v -e '_test\.cc$' -e '^src/.*/fuzz')
if echo "$files" | xargs -P "$jobs" -n 4 clang-tidy -p "$build" --quiet >"$out" 2>&1; then
  echo "tidy.sh: clean ($(echo "$files" | wc -l) files)"
else
  grep -E 'warning:|error:' "$out" | sort -u
  echo "tidy.sh: clang-tidy found the problems above" >&2
  exit 1
fi

#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset `fuzz`: clang++, ASan + UBSan) and runs each
# for a fixed time.
#
#   fuzz/run.sh [SECONDS_PER_TARGET]      default 30
#
# Environment:
#   FUZZ_TARGETS="sale_fuzz sigv4_fuzz"   run only these (default: all)
#   FUZZ_JOBS=2                           run this many targets at once (default 1)
#   FUZZ_NO_BUILD=1                       skip configure and build
#   FUZZ_BUILD_DIR=build/asan             use the fuzzers of another clang build (the
#                                         `asan` preset builds them too; CI uses that)
#
# Seeds: fuzz/corpus/<target>/ (read only). What a run discovers is kept in
# build/fuzz/corpus/<target>/ and reused by the next run. Crashes, timeouts and
# out-of-memory inputs go to build/fuzz/crashes/<target>/; logs to build/fuzz/logs/.
# Prints the executions per target and their total; exits 1 when any target found
# something (or did not run), 0 otherwise. Reproduce a crash with
#   build/fuzz/fuzz/<target> build/fuzz/crashes/<target>/crash-...
# Needs only what scripts/install-deps.sh --test installs (clang, libclang-rt-dev).
set -euo pipefail

seconds="${1:-30}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build/fuzz}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
all_targets=(sale_fuzz http_request_fuzz config_fuzz catalog_fuzz sigv4_fuzz s3_xml_fuzz
             canonical_pack_fuzz)
read -r -a targets <<< "${FUZZ_TARGETS:-${all_targets[*]}}"
jobs="${FUZZ_JOBS:-1}"

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  cmake --preset fuzz -S "$root" -B "$build" > /dev/null
  cmake --build "$build" -j2 --target "${targets[@]}"
fi

mkdir -p "$build/crashes" "$build/logs" "$build/corpus"
# Crash files of earlier runs stay for reference; only newer ones fail this run.
marker="$build/logs/.run-start"
touch "$marker"

# Runs one target; its exit status is libFuzzer's.
run_one() {
  local t="$1"
  local bin="$build/fuzz/$t"
  local work="$build/corpus/$t"
  local crashes="$build/crashes/$t"
  local log="$build/logs/$t.log"
  mkdir -p "$work" "$crashes"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1
              -artifact_prefix="$crashes/")
  if [ -f "$root/fuzz/dict/$t.dict" ]; then args+=(-dict="$root/fuzz/dict/$t.dict"); fi
  # Each target writes its temporary files into its own folder.
  mkdir -p "$build/tmp/$t"
  TMPDIR="$build/tmp/$t" "$bin" "${args[@]}" "$work" "$root/fuzz/corpus/$t" > "$log" 2>&1
}

declare -A status
pids=()
names=()
for t in "${targets[@]}"; do
  if [ ! -x "$build/fuzz/$t" ]; then
    echo "$t: not built" >&2
    status[$t]=127
    continue
  fi
  echo "running $t for ${seconds}s ..."
  run_one "$t" &
  pids+=("$!")
  names+=("$t")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    if wait "${pids[0]}"; then status[${names[0]}]=0; else status[${names[0]}]=$?; fi
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then status[${names[$i]}]=0; else status[${names[$i]}]=$?; fi
done

total=0
failed=0
printf '%-20s %14s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  execs="$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" 2> /dev/null | tail -1 |
           awk '{print $2}')"
  execs="${execs:-0}"
  rate="$(grep -ao 'stat::average_exec_per_sec: *[0-9]*' "$log" 2> /dev/null | tail -1 |
          awk '{print $2}')"
  found="$(find "$build/crashes/$t" -type f -newer "$marker" 2> /dev/null | wc -l)"
  result=ok
  if [ "${status[$t]:-1}" -ne 0 ] || [ "$found" -gt 0 ]; then
    result="FAILED (exit ${status[$t]:-?}, ${found} new file(s) in $build/crashes/$t, log $log)"
    failed=1
  fi
  total=$((total + execs))
  printf '%-20s %14s %10s  %s\n' "$t" "$execs" "${rate:-0}" "$result"
done
printf '%-20s %14s\n' total "$total"
if [ "$failed" -ne 0 ]; then
  for t in "${targets[@]}"; do
    grep -a -m1 -A12 -E '^==[0-9]+==ERROR|fuzz invariant violated|runtime error' \
      "$build/logs/$t.log" 2> /dev/null | sed "s/^/[$t] /" || true
  done
  exit 1
fi

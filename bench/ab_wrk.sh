#!/bin/bash
# A/B of two (or more) machub binaries under wrk, alternating, so drift in the machine's
# load hits each alike (issue 14's before/after figures, docs/BENCHMARKS.md "The hot path").
#
#   bench/ab_wrk.sh TERMINALS ROUNDS SECONDS BINARY...
#
# Per round and binary: a fresh data folder with TERMINALS tokens, `machub serve` (embedded
# defaults: group commit, upload to the local folder), wrk with TERMINALS connections
# (bench/wrk/sale.lua), the hub's peak RSS (VmHWM), then bench/fsync_probe on the same
# folder. Prints each run, then per binary the medians (and ranges) over the rounds.
# fsync_probe comes from $MACHUB_BUILD_DIR (default build/release-test).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
[ $# -ge 4 ] || { sed -n '2,12p' "$0"; exit 2; }
n=$1 rounds=$2 seconds=$3
shift 3
build="${MACHUB_BUILD_DIR:-build/release-test}"
command -v wrk >/dev/null || { echo "missing wrk: scripts/install-deps.sh --bench" >&2; exit 2; }
[ -x "$build/bench/fsync_probe" ] || cmake --build "$build" -j2 --target fsync_probe >/dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/machub-ab-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
threads=2
[ "$n" -lt 2 ] && threads=1
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    d="$work/run"
    rm -rf "$d" && mkdir -p "$d"
    "$bin" token create --data-dir "$d/data" --count "$n" --prefix T >"$d/tokens" 2>/dev/null
    "$bin" serve --data-dir "$d/data" --listen 127.0.0.1:0 --ready-file "$d/ready" \
      --rate-per-terminal 0 --demo-token false --log-level warn >"$d/hub.log" 2>&1 &
    hub=$!
    for _ in $(seq 200); do [ -s "$d/ready" ] && break; sleep 0.05; done
    out=$(TOKENS="$d/tokens" RUN_ID="$round-$RANDOM" wrk -t"$threads" -c"$n" -d"${seconds}s" \
      -s "$root/bench/wrk/sale.lua" "http://127.0.0.1:$(cat "$d/ready")" | tail -n 1)
    hwm=$(awk '/VmHWM/ {print $2}' "/proc/$hub/status")
    kill "$hub"; wait "$hub" || true
    probe=$("$build/bench/fsync_probe" "$d" 200)
    echo "$round $bin $out $probe $hwm"
  done
done | tee "$work/runs"
python3 - "$work/runs" <<'PY'
import json, statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    rnd, binary, rest = line.split(" ", 2)
    wrk_json, rest = rest.split("} ", 1)
    probe_json, hwm = rest.rsplit(" ", 1)
    r, p = json.loads(wrk_json + "}"), json.loads(probe_json)
    runs[binary].append((r["rate_per_s"], r["p50_ms"], r["p99_ms"], p["fdatasync_p50_ms"],
                         int(hwm), r["non_201"] + r["socket_errors"]))
print()
print("| binary | sales/s (range) | p50 ms | p99 ms | fdatasync p50 ms | p50 / fdatasync p50 | peak RSS kB (range) | errors |")
print("|---|---|---|---|---|---|---|---|")
for binary, v in runs.items():
    med = lambda i: statistics.median(x[i] for x in v)
    lo = lambda i: min(x[i] for x in v)
    hi = lambda i: max(x[i] for x in v)
    ratio = statistics.median(x[1] / x[3] for x in v)
    print(f"| {binary} | {med(0):.0f} ({lo(0):.0f}-{hi(0):.0f}) | {med(1):.3f} | {med(2):.2f} "
          f"| {med(3):.3f} | {ratio:.2f} | {med(4):.0f} ({lo(4)}-{hi(4)}) | {sum(x[5] for x in v)} |")
PY

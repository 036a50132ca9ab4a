#!/bin/bash
# Durable-sale throughput and latency of a release build at 1, 8 and 64 terminals, with
# this machine's fdatasync latency measured in the same run, the hub's peak RSS, and the
# 64-terminal run repeated with group commit off (one transaction per sale), and with the
# upload to the local folder (the embedded default) off, to show what it costs.
#
#   bench/loadgen_bench.sh [DURATION_S]     (default 10 s per run)
#
# Prints a Markdown table (paste it into docs/BENCHMARKS.md with this command line).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
build=build/release
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target machub fsync_probe >/dev/null
bin="$build/src/app/machub"

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-bench-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

probe=$("$build/bench/fsync_probe" "$work" 300)
fsync_p50=$(echo "$probe" | sed -E 's/.*"fdatasync_p50_ms":([0-9.]+).*/\1/')

run() {  # run TERMINALS GROUP_COMMIT [SYNC] -> prints one table row
  local n=$1 group=$2 sync=${3:-true} data="$work/data-$1-$2-${3:-true}"
  mkdir -p "$data"
  "$bin" token create --data-dir "$data" --count "$n" --prefix T > "$work/tokens-$n" 2>/dev/null
  rm -f "$work/ready"
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --ready-file "$work/ready" \
    --rate-per-terminal 0 --demo-token false --group-commit "$group" --log-level warn \
    --sync-enabled "$sync" \
    > "$work/hub.log" 2>&1 &
  local hub=$!
  for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.05; done
  local port; port=$(cat "$work/ready")
  local out; out=$("$bin" loadgen --url "http://127.0.0.1:$port" --tokens "$work/tokens-$n" \
    --terminals "$n" --duration "$duration" --retry-percent 0 --refund-percent 5 --seed 1 \
    2>"$work/loadgen-$n-$group.txt" | tail -n 1)
  local rss_kb; rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$hub/status")
  kill -TERM "$hub"; wait "$hub" || true
  python3 - "$n" "$group" "$rss_kb" "$fsync_p50" "$out" "$sync" <<'PY'
import json, sys
n, group, rss_kb, fsync_p50, line, sync = sys.argv[1:7]
r = json.loads(line)
errors = sum(v for k, v in r.get("by_status", {}).items() if not k.startswith("2")) + r.get("conn_errors", 0)
ratio = r["p50_ms"] / float(fsync_p50) if float(fsync_p50) > 0 else float("nan")
print(f"| {n} | {'on' if group == 'true' else 'off'} | {'on' if sync == 'true' else 'off'} | {r['throughput_per_s']:.0f} | {r['p50_ms']:.2f} | "
      f"{r['p95_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {ratio:.2f} | {errors} | {int(rss_kb)/1024:.1f} |")
PY
}

echo "fdatasync on $(df --output=source "$work" | tail -n 1): $probe"
echo
echo "| terminals | group commit | upload to local folder | durable sales/s | p50 ms | p95 ms | p99 ms | max ms | p50 / fdatasync p50 | errors | hub peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
run 1 true
run 8 true
run 64 true
run 64 false
run 64 true false

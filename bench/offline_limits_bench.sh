#!/bin/bash
# Sale latency at 8 terminals with offline card payments, exposure limits on vs off
# (issue #9: the check at commit must cost no more than noise). The load generator's
# sales carry an offline card payment about 1 time in 18; "on" sets all three limits
# high enough never to refuse, so every offline sale runs the full check; "off" sets
# none. Runs alternate off/on REPEATS times; medians are printed with the on/off ratio.
#
#   bench/offline_limits_bench.sh [DURATION_S] [REPEATS]     (default 8 s, 3 repeats)
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-8}"
repeats="${2:-3}"
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target machub >/dev/null
bin=build/release/src/app/machub

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-offline-bench-XXXXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

run() {  # run MODE INDEX -> one JSON line: mode, loadgen summary, offline rows stored
  local mode=$1 i=$2 data="$work/data-$1-$2"
  mkdir -p "$data"
  "$bin" token create --data-dir "$data" --count 8 --prefix T > "$work/tokens" 2>/dev/null
  local limits=()
  if [ "$mode" = on ]; then
    limits=(--offline-card-max-amount 100000.00 --offline-terminal-max-outstanding 1000000000.00
            --offline-store-max-outstanding 10000000000.00)
  fi
  rm -f "$work/ready"
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --ready-file "$work/ready" \
    --rate-per-terminal 0 --demo-token false --log-level warn "${limits[@]}" \
    > "$work/hub.log" 2>&1 &
  local hub=$!
  for _ in $(seq 100); do [ -s "$work/ready" ] && break; sleep 0.05; done
  local port; port=$(cat "$work/ready")
  local out; out=$("$bin" loadgen --url "http://127.0.0.1:$port" --tokens "$work/tokens" \
    --terminals 8 --duration "$duration" --retry-percent 0 --refund-percent 0 --seed "$i" \
    2>/dev/null | tail -n 1)
  kill -TERM "$hub"; wait "$hub" || true
  local rows; rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM offline_payments').fetchone()[0])" "$data/journal.db")
  echo "{\"mode\":\"$mode\",\"offline_rows\":$rows,\"r\":$out}"
}

results="$work/results.jsonl"
for i in $(seq "$repeats"); do
  run off "$i" >> "$results"
  run on "$i" >> "$results"
done
python3 - "$results" "$duration" "$repeats" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(mode, key):
    return statistics.median(r["r"][key] for r in rows if r["mode"] == mode)
def errors(mode):
    return sum(sum(v for k, v in r["r"].get("by_status", {}).items() if not k.startswith("2"))
               for r in rows if r["mode"] == mode)
print(f"8 terminals, {sys.argv[2]} s per run, {sys.argv[3]} runs per mode (alternating), medians:")
print()
print("| limits | sales/s | p50 ms | p99 ms | offline payments stored per run | errors |")
print("|---|---|---|---|---|---|")
for mode in ("off", "on"):
    stored = statistics.median(r["offline_rows"] for r in rows if r["mode"] == mode)
    print(f"| {mode} | {med(mode, 'throughput_per_s'):.0f} | {med(mode, 'p50_ms'):.3f} | "
          f"{med(mode, 'p99_ms'):.3f} | {stored:.0f} | {errors(mode)} |")
print()
print(f"on/off: sales/s {med('on','throughput_per_s')/med('off','throughput_per_s'):.3f}, "
      f"p50 {med('on','p50_ms')/med('off','p50_ms'):.3f}, p99 {med('on','p99_ms')/med('off','p99_ms'):.3f}")
PY

#!/bin/bash
# Draining a backlog of SALES sales (default 1,000,000) from the journal to a real S3
# (a throw-away Ceph RGW from tests/peers/rgw.sh, on this machine), with a release build:
#   - drain rate (sales/s, Uploader::RunOnce as `machub sync --once` runs it) and CPU use,
#   - wire bytes per sale (gzip object bytes) against raw JSON Lines bytes per sale,
#   - the draining process's peak RSS,
#   - sale append latency (p50/p99, one sale at a time at APPENDS_PER_S) with no drain and
#     while the upload thread drains the same backlog (as in `machub serve`).
# Each figure is the median of RUNS runs (default 3) on copies of one filled journal.
#
#   bench/sync_drain_bench.sh [SALES]
#   env: RUNS=3 APPENDS_PER_S=200 BUILD_DIR=build/release-test FORMAT=jsonl LEVEL=(default)
#
# Needs the test peers (radosgw, ceph-mon, ceph-osd: scripts/install-deps.sh --test).
# Prints one line per run, then a Markdown table (docs/BENCHMARKS.md, "Sync to S3").
set -euo pipefail
cd "$(dirname "$0")/.."
sales="${1:-1000000}"
runs="${RUNS:-3}"
rate="${APPENDS_PER_S:-200}"
format="${FORMAT:-jsonl}"
build="${BUILD_DIR:-build/release-test}"
level_args=()
[ -n "${LEVEL:-}" ] && level_args=(--level "$LEVEL")

cmake --preset release-test -B "$build" >/dev/null
nice -n 5 cmake --build "$build" -j2 --target sync_bench >/dev/null
bin="$build/bench/sync_bench"

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-drain-XXXXXX")
cleanup() {
  tests/peers/rgw.sh stop "$work/rgw" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "filling a journal with $sales sales..." >&2
"$bin" --fill-only --work "$work/seed" --sales "$sales" 2>&1 | tail -n 1 >&2
echo "journal: $(du -sh "$work/seed" | cut -f1)" >&2

mkdir -p "$work/rgw"
RGW_WATCH_PID=$$ tests/peers/rgw.sh start "$work/rgw" >/dev/null
# shellcheck disable=SC1091
. "$work/rgw/env"
s3=(--endpoint "$RGW_ENDPOINT" --access-key "$RGW_ACCESS_KEY" --secret-key "$RGW_SECRET_KEY")

peer_cpu() {  # CPU seconds used so far by radosgw + ceph-osd + ceph-mon (the S3 side)
  local ticks=0 pid
  for pid in "$RGW_PID" "$OSD_PID" "$MON_PID"; do
    ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", t / hz}'
}

fresh() {  # fresh NAME: a copy of the filled journal
  rm -rf "$work/$1"
  mkdir -p "$work/$1"
  cp "$work/seed/"journal.db* "$work/$1/"
}

results="$work/results.jsonl"
for i in $(seq "$runs"); do
  # Append latency with no drain, on the same journal (10 s).
  fresh idle
  idle=$("$bin" --drain-only --work "$work/idle" --target null --appends-per-s "$rate" \
    --baseline-ms 10000 | tail -n 1)
  # The drain as `machub sync --once` runs it.
  fresh once
  peer0=$(peer_cpu)
  once=$("$bin" --work "$work/once" --format "$format" "${level_args[@]}" --target rgw \
    --bucket "drain-once-$i" "${s3[@]}" | tail -n 1)
  peer_s=$(awk -v a="$(peer_cpu)" -v b="$peer0" 'BEGIN {printf "%.2f", a - b}')
  # The drain by the upload thread (as `machub serve`), sales appended meanwhile.
  fresh threaded
  threaded=$("$bin" --work "$work/threaded" --format "$format" "${level_args[@]}" --target rgw \
    --bucket "drain-threaded-$i" --threaded --appends-per-s "$rate" "${s3[@]}" | tail -n 1)
  load=$(cut -d' ' -f1 /proc/loadavg)
  echo "{\"run\":$i,\"load1\":$load,\"s3_cpu_seconds\":$peer_s,\"idle\":$idle,\"once\":$once,\"threaded\":$threaded}" |
    tee -a "$results"
  rm -rf "$work/idle" "$work/once" "$work/threaded"
done

python3 - "$results" "$sales" "$rate" "$(nproc)" <<'PY'
import json, statistics, sys
path, sales, rate, cores = sys.argv[1:5]
rows = [json.loads(l) for l in open(path)]
med = lambda f: statistics.median(f(r) for r in rows)
once = lambda k: med(lambda r: r["once"][k])
raw, wire = once("raw_bytes_per_sale"), once("wire_bytes_per_sale")
print()
print(f"{sales} sales, {len(rows)} runs (medians), {cores} cores, RGW on the same machine, "
      f"appends during the latency runs: {rate}/s")
print()
print("| figure | median | runs |")
print("|---|---|---|")
def row(name, f, fmt="{:.0f}"):
    vals = [f(r) for r in rows]
    print(f"| {name} | {fmt.format(statistics.median(vals))} | {', '.join(fmt.format(v) for v in vals)} |")
row("machine load (1 min average, after the run; other work included)", lambda r: r["load1"], "{:.1f}")
row("drain, sync --once: sales/s", lambda r: r["once"]["sales_per_s"])
row("drain, sync --once: sales per CPU-second of the hub process", lambda r: r["once"]["sales_per_cpu_s"])
row("S3 side (radosgw + ceph-osd + ceph-mon) CPU seconds during the sync --once drain", lambda r: r["s3_cpu_seconds"], "{:.1f}")
row("hub CPU seconds during the sync --once drain", lambda r: r["once"]["cpu_seconds"], "{:.1f}")
row("drain, upload thread: sales/s", lambda r: r["threaded"]["sales_per_s"])
row("raw JSON bytes/sale", lambda r: r["once"]["raw_bytes_per_sale"])
row("wire bytes/sale", lambda r: r["once"]["wire_bytes_per_sale"])
row("wire / raw %", lambda r: r["once"]["wire_to_raw_percent"], "{:.1f}")
row("peak RSS during the drain, sync --once (MB)", lambda r: r["once"]["rss_max_kb"] / 1024, "{:.1f}")
row("peak RSS during the drain, upload thread (MB)", lambda r: r["threaded"]["rss_max_kb"] / 1024, "{:.1f}")
row("append p50 idle (ms)", lambda r: r["idle"]["append_during_drain"]["p50_us"] / 1000, "{:.2f}")
row("append p99 idle (ms)", lambda r: r["idle"]["append_during_drain"]["p99_us"] / 1000, "{:.2f}")
row("append p50 during the drain (ms)", lambda r: r["threaded"]["append_during_drain"]["p50_us"] / 1000, "{:.2f}")
row("append p99 during the drain (ms)", lambda r: r["threaded"]["append_during_drain"]["p99_us"] / 1000, "{:.2f}")
row("append max during the drain (ms)", lambda r: r["threaded"]["append_during_drain"]["max_us"] / 1000, "{:.2f}")
PY

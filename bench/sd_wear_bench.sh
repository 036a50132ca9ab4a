#!/bin/bash
# SD-card wear (issue 11, part 5): bytes the hub writes to the device per acknowledged sale
# at 1 and 8 terminals, against the canonical sale size, with the upload to the local
# folder on (the embedded default: journal WAL, checkpoints, upload bookkeeping and the
# uploaded objects all land on the same card), and a years-of-life estimate for a 32 GB
# card at 2,000 and 20,000 sales a day.
#
#   bench/sd_wear_bench.sh [DURATION_S] [BINARY]   (default 10 s per run; the binary of
#                                                  build/release, else build/dev)
#   MACHUB_SD_TERMINALS="1 8 64" chooses the runs (default "1 8").
#
# Bytes written are `write_bytes` of /proc/PID/io: what the process made the kernel write
# to the block device (counted when pages are dirtied; tmpfs counts nothing, so the data
# folder must be on a real file system: it is created under $TMPDIR, default /tmp). It is
# read after the load plus a 3 s settle (the checkpointer and the uploader catch up), before
# SIGTERM. The canonical size is the mean length of `sales.canonical` in the journal
# (sqlite3 CLI).
#
# The life estimate is card endurance / daily bytes, with the assumptions printed:
# endurance = capacity x P/E cycles / the card's own write amplification. MACHUB_SD_PE
# (default 500, consumer TLC) and MACHUB_SD_WAF (default 4: small synchronous writes on a
# card with large erase blocks) change them.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
bin="${2:-}"
if [ -z "$bin" ]; then
  if [ -x build/release/src/app/machub ]; then bin=build/release/src/app/machub; else bin=build/dev/src/app/machub; fi
fi
[ -x "$bin" ] || { echo "sd_wear_bench.sh: no machub binary at $bin (build it first)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "sd_wear_bench.sh: the sqlite3 command is missing" >&2; exit 2; }
pe="${MACHUB_SD_PE:-500}"
waf="${MACHUB_SD_WAF:-4}"

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-wear-XXXXXX")
hub=""
trap '[ -n "$hub" ] && kill -KILL "$hub" 2>/dev/null; rm -rf "$work"' EXIT
fs=$(df --output=fstype "$work" | tail -n 1)
[ "$fs" != tmpfs ] || { echo "sd_wear_bench.sh: $work is on tmpfs (nothing is counted); set TMPDIR" >&2; exit 2; }

run() {  # run TERMINALS -> one table row
  local n=$1 data="$work/data-$1"
  mkdir -p "$data"
  "$bin" token create --data-dir "$data" --count "$n" --prefix T >"$work/tokens-$n" 2>/dev/null
  rm -f "$work/ready"
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --ready-file "$work/ready" \
    --rate-per-terminal 0 --demo-token false --log-level warn >"$work/hub-$n.log" 2>&1 &
  hub=$!
  for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
  local port; port=$(cat "$work/ready")
  sleep 1  # start-up writes (schema, first checkpoint) are not per-sale costs
  local before; before=$(awk '/^write_bytes:/ {print $2}' "/proc/$hub/io")
  local out; out=$("$bin" loadgen --url "http://127.0.0.1:$port" --tokens "$work/tokens-$n" \
    --terminals "$n" --duration "$duration" --retry-percent 0 --refund-percent 2 --seed 1 \
    2>/dev/null | tail -n 1)
  sleep 3
  local after; after=$(awk '/^write_bytes:/ {print $2}' "/proc/$hub/io")
  kill -TERM "$hub"; wait "$hub" || true
  hub=""
  local canon; canon=$(sqlite3 "$data/journal.db" 'SELECT CAST(avg(length(canonical)) AS INTEGER) FROM sales')
  python3 - "$n" "$before" "$after" "$canon" "$pe" "$waf" "$out" <<'PY'
import json, sys
n, before, after, canon, pe, waf, line = sys.argv[1:8]
r = json.loads(line)
acked = r["acked"]
per_sale = (int(after) - int(before)) / acked if acked else float("nan")
endurance = 32e9 * float(pe) / float(waf)
life = lambda per_day: endurance / (per_sale * per_day) / 365
print(f"| {n} | {acked} | {int(canon)} | {per_sale / 1024:.1f} KB | {per_sale / int(canon):.1f}x | "
      f"{life(2000):.0f} | {life(20000):.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
PY
}

echo "binary: $bin; data folder on $fs ($(df --output=source "$work" | tail -n 1)); ${duration} s per run"
echo "life assumptions: 32 GB card, $pe P/E cycles, card write amplification $waf"
echo
echo "| terminals | sales acknowledged | canonical sale bytes | written per sale | amplification | years at 2,000/day | years at 20,000/day | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in ${MACHUB_SD_TERMINALS:-1 8}; do run "$n"; done

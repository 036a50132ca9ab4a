#!/bin/bash
# SD-card wear (issue 11, part 5): bytes the hub writes to the device per acknowledged sale
# at 1 and 8 terminals, against the canonical sale size, with the upload to the local
# folder on (the embedded default: journal WAL, checkpoints, upload bookkeeping and the
# uploaded objects all land on the same card), and a years-of-life estimate for a 32 GB
# card at 2,000 and 20,000 sales a day.
#
#   bench/sd_wear_bench.sh [DURATION_S] [BINARY]   (default 10 s per run; the binary of
#                                                  build/release, else build/dev)
#   MACHUB_SD_TERMINALS="1 8 64": the closed-loop runs, one per terminal count (default
#     "1 8"): loadgen as fast as the hub answers, for DURATION_S.
#   MACHUB_SD_RATES="0.2 2": the open-loop runs at a store's pace, sales/s in total
#     (default "2"), from MACHUB_SD_RATE_TERMINALS terminals (4) for MACHUB_SD_RATE_DURATION
#     seconds (60), on a journal first filled for MACHUB_SD_PREFILL_S seconds (10) by 8
#     terminals, so that its id indexes have the size of weeks of sales.
#   bench/sd_wear_run.py does one run.
#
# Bytes written are `write_bytes` of /proc/PID/io: what the process made the kernel write
# to the block device (counted when pages are dirtied; tmpfs counts nothing, so the data
# folder must be on a real file system: it is created under $TMPDIR, default /tmp). Two
# figures per sale: read 3 s after the load, before SIGTERM (the checkpointer and the
# uploader have caught up on what they do at once), and through the hub's exit (from its
# rusage), which also counts what the hub deferred, such as a checkpoint waiting for more
# WAL; the amplification and the life estimate use the second. The canonical size is the
# mean canonical length of the uploaded batches (`batches.canonical_bytes`, sqlite3 CLI).
# "Without the local folder's objects" takes away the gzip objects the measured sales were
# uploaded in (4 KiB-rounded): what a hub uploading to a bucket writes to its card.
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
trap 'rm -rf "$work"' EXIT
fs=$(df --output=fstype "$work" | tail -n 1)
[ "$fs" != tmpfs ] || { echo "sd_wear_bench.sh: $work is on tmpfs (nothing is counted); set TMPDIR" >&2; exit 2; }

run() {  # run TERMINALS RATE DURATION PREFILL_S -> one table row
  local out; out=$(python3 bench/sd_wear_run.py "$bin" "$work" "$1" "$3" "$2" "$4")
  local data; data=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"])' "$out")
  # The journal packs each canonical (docs/JOURNAL.md); the batches record its length.
  local canon; canon=$(sqlite3 "$data/journal.db" \
    'SELECT CAST(sum(canonical_bytes) / sum(last_seq - first_seq + 1) AS INTEGER) FROM batches')
  # The objects the measured sales went into, each rounded up to whole 4 KiB pages as the
  # kernel counts them: with a bucket they go over the network, not to the card.
  local since; since=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["measured_from_ms"])' "$out")
  local objects; objects=$(sqlite3 "$data/journal.db" \
    "SELECT coalesce(sum((gz_bytes + 4095) / 4096 * 4096), 0) FROM batches WHERE created_at_ms >= $since")
  rm -rf "$data"
  python3 - "$out" "$canon" "$pe" "$waf" "$objects" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
canon, pe, waf, objects = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
per_sale = r["through_exit"]
endurance = 32e9 * pe / waf
life = lambda per_day: endurance / (per_sale * per_day) / 365
load = (f"{r['terminals']} terminal" + ("s" if r["terminals"] > 1 else "") + ", closed loop") if r["rate"] == 0 else \
    f"{r['rate']:g} sales/s, {r['terminals']} terminals" + \
    (f", {r['prefilled']:,} sales before" if r["prefilled"] else "")
print(f"| {load} | {r['acked']} | {canon} | {r['at_read'] / 1024:.1f} KB | {per_sale / 1024:.1f} KB | "
      f"{per_sale / canon:.1f}x | {(per_sale - objects / r['acked']) / 1024:.1f} KB | "
      f"{life(2000):.0f} | {life(20000):.1f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
PY
}

echo "binary: $bin; data folder on $fs ($(df --output=source "$work" | tail -n 1)); ${duration} s per run"
echo "life assumptions: 32 GB card, $pe P/E cycles, card write amplification $waf"
echo
echo "| load | sales acknowledged | canonical sale bytes | written per sale, 3 s after | through the hub's exit | amplification | without the local folder's objects | years at 2,000/day | years at 20,000/day | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for n in ${MACHUB_SD_TERMINALS-1 8}; do run "$n" 0 "$duration" 0; done
for r in ${MACHUB_SD_RATES-2}; do
  run "${MACHUB_SD_RATE_TERMINALS:-4}" "$r" "${MACHUB_SD_RATE_DURATION:-60}" "${MACHUB_SD_PREFILL_S:-10}"
done

#!/bin/bash
# How fast a big journal comes back after kill -9 under load (issue 14).
#
#   bench/recovery_bench.sh [LOAD_SECONDS] [ROUNDS]     (defaults: 60 s, 3 rounds)
#
# Fills a fresh data folder with `machub serve` (embedded defaults: group commit, upload to
# the local folder) under wrk at 64 terminals (bench/wrk/sale.lua) for LOAD_SECONDS, kills
# the hub with SIGKILL while wrk is still posting, then, ROUNDS times: starts the hub on the
# same folder and measures, from the exec, the time until its ready file appears and until
# a new sale is answered 201 (one client retrying every millisecond); then kills it with -9
# again at once. Prints the journal's size and sale count and each round's figures as a
# Markdown table (docs/BENCHMARKS.md "Recovery after kill -9").
# Build: $MACHUB_BUILD_DIR (default build/release-test). Needs wrk (install-deps.sh --bench).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
load_s="${1:-60}"
rounds="${2:-3}"
build="${MACHUB_BUILD_DIR:-build/release-test}"
command -v wrk >/dev/null || { echo "missing wrk: scripts/install-deps.sh --bench" >&2; exit 2; }
if [ ! -f "$build/build.ninja" ]; then cmake --preset release-test -B "$build" >/dev/null; fi
cmake --build "$build" -j2 --target machub >/dev/null
bin="$root/$build/src/app/machub"

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-recovery-XXXXXX")
trap 'kill -9 $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/data"
"$bin" token create --data-dir "$data" --count 64 --prefix T >"$work/tokens" 2>/dev/null

serve() {
  rm -f "$work/ready"
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --ready-file "$work/ready" \
    --rate-per-terminal 0 --demo-token false --log-level warn >>"$work/hub.log" 2>&1 &
  hub=$!
}

serve
for _ in $(seq 400); do [ -s "$work/ready" ] && break; sleep 0.05; done
port=$(cat "$work/ready")
TOKENS="$work/tokens" RUN_ID="fill-$RANDOM" wrk -t2 -c64 -d"$((load_s + 5))s" \
  -s "$root/bench/wrk/sale.lua" "http://127.0.0.1:$port" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
sleep "$load_s"
kill -9 "$hub"
wait "$hub" 2>/dev/null || true
wait "$wrk_pid" 2>/dev/null || true

journal_bytes=$(stat -c %s "$data/journal.db")
wal_bytes=$(stat -c %s "$data/journal.db-wal" 2>/dev/null || echo 0)
echo "load: $load_s s of wrk at 64 terminals, killed with -9 under load; journal.db $journal_bytes bytes, WAL $wal_bytes bytes"
echo
echo "| round | sales in the journal | exec -> ready file (s) | exec -> first new sale 201 (s) |"
echo "|---|---|---|---|"
token=$(head -n 1 "$work/tokens" | cut -d' ' -f2)
for round in $(seq "$rounds"); do
  python3 - "$bin" "$data" "$work/ready" "$token" "$round" <<'PY'
import http.client, json, os, subprocess, sys, time
binary, data, ready, token, rnd = sys.argv[1:6]
if os.path.exists(ready):
    os.unlink(ready)
t0 = time.monotonic()
hub = subprocess.Popen([binary, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
                        "--ready-file", ready, "--rate-per-terminal", "0",
                        "--demo-token", "false", "--log-level", "warn"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
while not (os.path.exists(ready) and os.path.getsize(ready) > 0):
    if hub.poll() is not None:
        sys.exit(f"hub exited with {hub.returncode}")
    time.sleep(0.0005)
t_ready = time.monotonic() - t0
port = int(open(ready).read().strip())
body = json.dumps({"id": f"recovery-r{'abcdefgh'[int(rnd) % 8]}-{os.getpid():x}", "terminal_id": "T001",
                   "created_at": "2026-12-06T10:15:00Z", "currency": "USD",
                   "lines": [{"sku": "1", "name": "Tea", "qty": "1", "unit_price": "2.00", "tax_rate": "0"}],
                   "payments": [{"method": "cash", "amount": "2.00"}]})
status = None
while status != 201:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("POST", "/v1/sales", body, {"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        r = c.getresponse()
        answer = r.read()
        status = r.status
        if status not in (201, 503):
            sys.exit(f"unexpected answer {status}: {answer[:200]!r}")
    except OSError:
        pass
    if status != 201:
        time.sleep(0.001)
t_sale = time.monotonic() - t0
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
seq = json.loads(answer)["seq"]
hub.kill()
hub.wait()
print(f"| {rnd} | {seq:,} | {t_ready:.3f} | {t_sale:.3f} |")
PY
done

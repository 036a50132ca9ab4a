#!/bin/bash
# machub against PostgreSQL 15 on the same machine, same durability (fsync on every commit,
# synchronous_commit=on), same clients: 1, 8 and 64 simulated terminals.
#
#   bench/compare_postgres.sh [SECONDS] [ROUNDS]      (defaults: 10 s per run, 3 rounds)
#
# For each round and client count it runs, one after the other (interleaved, so drift in
# the machine's load hits all four alike):
#   machub            `machub serve` (group commit on, upload to the local folder on: the
#                     embedded defaults) driven by `machub loadgen --terminals N` (closed
#                     loop, new sales only: --retry-percent 0 --refund-percent 0);
#   machub (wrk)      the same hub driven by Debian's wrk, an independent HTTP load tool
#                     (bench/wrk/sale.lua: every request a new 3-line sale of one of the N
#                     terminals, N connections, 2 threads), so every run shows both
#                     clients' view;
#   machub no-group   the same with --group-commit false (one SQLite transaction per sale);
#   PostgreSQL 15     a throw-away cluster (initdb in a temporary folder, 127.0.0.1 on a free
#                     port, fsync=on, synchronous_commit=on, other settings Debian's
#                     defaults) with machub's journal schema plus a sale_lines table
#                     (bench/compare_postgres/schema.sql), driven by
#                     `pgbench -c N -j 2 -M prepared -f bench/compare_postgres/sale.sql`
#                     (one sale and its 1-10 lines per transaction); latency percentiles
#                     from pgbench's per-transaction log (-l).
# Each measure is the median over the rounds. Both load generators run on the same cores
# as the server they drive. Tables are emptied and checkpointed before every PostgreSQL
# run; every machub run starts on an empty data folder.
#
# Needs postgresql-15 (initdb, postgres, pgbench) and wrk: scripts/install-deps.sh --bench.
# Also printed: each hub's peak RSS (VmHWM) and wrk's p50 over the fdatasync p50 that
# bench/fsync_probe measures on the same folder right after each wrk run (median and range
# over the rounds).
# Running as root: the cluster runs as `nobody` (initdb refuses root).
# Build: $MACHUB_BUILD_DIR (default build/release-test, configured with the release-test
# preset if needed). Prints a Markdown table (docs/BENCHMARKS.md "machub vs PostgreSQL 15").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
duration="${1:-10}"
rounds="${2:-3}"
build="${MACHUB_BUILD_DIR:-build/release-test}"
pgbin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
sqldir="$root/bench/compare_postgres"

for tool in initdb pg_ctl postgres pgbench psql; do
  if [ ! -x "$pgbin/$tool" ]; then
    echo "missing $pgbin/$tool: install postgresql-15 (scripts/install-deps.sh --bench)" >&2
    exit 2
  fi
done
if ! command -v wrk >/dev/null; then
  echo "missing wrk: install it (scripts/install-deps.sh --bench)" >&2
  exit 2
fi
if [ ! -f "$build/build.ninja" ]; then
  cmake --preset release-test -B "$build" >/dev/null
fi
cmake --build "$build" -j2 --target machub fsync_probe >/dev/null
bin="$root/$build/src/app/machub"
[ -x "$bin" ] || bin="$build/src/app/machub"

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-vs-pg-XXXXXX")
chmod 755 "$work"
pgdata="$work/pg"
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  mkdir -p "$pgdata"
  chown nobody: "$pgdata"
  as_pg=(runuser -u nobody --)
fi

cleanup() {
  if [ -f "$pgdata/postmaster.pid" ]; then
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null 2>&1 || true
  fi
  local pids; pids=$(jobs -p)
  [ -n "$pids" ] && kill $pids 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

fsync_line=$("$build/bench/fsync_probe" "$work" 300 2>/dev/null || echo n/a)

# ---- PostgreSQL cluster
pgport=$(free_port)
"${as_pg[@]}" "$pgbin/initdb" -D "$pgdata" -A trust -U bench -E UTF8 --locale C.UTF-8 \
  >"$work/initdb.log" 2>&1
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -o \
  "-c listen_addresses=127.0.0.1 -c port=$pgport -c unix_socket_directories=$pgdata -c fsync=on -c synchronous_commit=on -c max_connections=100" \
  start >/dev/null
psql=("$pgbin/psql" -h 127.0.0.1 -p "$pgport" -U bench -X -q -v ON_ERROR_STOP=1)
"${psql[@]}" -d postgres -c "CREATE DATABASE bench" >/dev/null
PGOPTIONS="-c client_min_messages=warning" "${psql[@]}" -d bench -f "$sqldir/schema.sql" >/dev/null

pg_run() {  # pg_run CLIENTS -> "tps p50_ms p99_ms failed"
  local n=$1 logs="$work/pglog-$1"
  rm -rf "$logs" && mkdir -p "$logs"
  "${psql[@]}" -d bench -c "TRUNCATE sale_lines, sales; UPDATE terminals SET last_receipt = 0; VACUUM ANALYZE; CHECKPOINT" >/dev/null 2>&1
  local out
  out=$(cd "$logs" && "$pgbin/pgbench" -h 127.0.0.1 -p "$pgport" -U bench -n -c "$n" -j 2 \
    -T "$duration" -M prepared -f "$sqldir/sale.sql" -l --log-prefix=tx bench 2>"$work/pgbench.err")
  python3 - "$logs" "$out" <<'PY'
import glob, re, sys
logs, out = sys.argv[1], sys.argv[2]
lat = []
for path in glob.glob(logs + "/tx*"):
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and parts[2].isdigit():  # failed/skipped transactions are not numbers
                lat.append(int(parts[2]) / 1000.0)
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
failed = re.search(r"number of failed transactions: (\d+)", out)
print(f"{float(tps.group(1)) if tps else float('nan'):.1f} {pct(0.50):.3f} {pct(0.99):.3f} "
      f"{failed.group(1) if failed else 0}")
PY
}

# ---- machub
start_hub() {  # start_hub CLIENTS GROUP_COMMIT: a fresh data folder and tokens; sets hub, port
  local n=$1 group=$2
  data="$work/data-$1-$2"
  rm -rf "$data" && mkdir -p "$data"
  "$bin" token create --data-dir "$data" --count "$n" --prefix T >"$work/tokens" 2>/dev/null
  rm -f "$work/ready"
  "$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --ready-file "$work/ready" \
    --rate-per-terminal 0 --demo-token false --group-commit "$group" --log-level warn \
    >"$work/hub.log" 2>&1 &
  hub=$!
  for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
  port=$(cat "$work/ready")
}

stop_hub() {  # prints the hub's peak RSS in kB
  awk '/VmHWM/ {print $2}' "/proc/$hub/status"
  kill -TERM "$hub"; wait "$hub" || true
  rm -rf "$data"
}

machub_run() {  # machub_run CLIENTS GROUP_COMMIT -> "sales_per_s p50_ms p99_ms errors rss_kb"
  local n=$1 group=$2 out rss
  start_hub "$n" "$group"
  out=$("$bin" loadgen --url "http://127.0.0.1:$port" --tokens "$work/tokens" --terminals "$n" \
    --duration "$duration" --retry-percent 0 --refund-percent 0 --threads 2 \
    2>"$work/loadgen.err" | tail -n 1)
  rss=$(stop_hub)
  python3 - "$out" "$rss" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
errors = sum(v for k, v in r.get("by_status", {}).items() if not k.startswith("2")) + r.get("conn_errors", 0)
print(f"{r['throughput_per_s']:.1f} {r['p50_ms']:.3f} {r['p99_ms']:.3f} {errors} {sys.argv[2]}")
PY
}

# The same hub driven by wrk, an independent HTTP load tool: N connections, each request a
# new 3-line sale of one of the N terminals (bench/wrk/sale.lua). wrk keeps one thread per
# connection up to 2 threads.
wrk_run() {  # wrk_run CLIENTS -> "sales_per_s p50_ms p99_ms errors rss_kb"
  local n=$1 out rss threads=2
  [ "$n" -lt 2 ] && threads=1
  start_hub "$n" true
  out=$(TOKENS="$work/tokens" RUN_ID="$n-$RANDOM" wrk -t"$threads" -c"$n" -d"${duration}s" \
    -s "$root/bench/wrk/sale.lua" "http://127.0.0.1:$port" 2>"$work/wrk.err" | tail -n 1)
  rss=$(stop_hub)
  python3 - "$out" "$rss" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
print(f"{r['rate_per_s']:.1f} {r['p50_ms']:.3f} {r['p99_ms']:.3f} {r['non_201'] + r['socket_errors']} {sys.argv[2]}")
PY
}

results="$work/results"
: >"$results"
for round in $(seq "$rounds"); do
  for n in 1 8 64; do
    echo "round $round/$rounds, $n clients" >&2
    echo "$round $n machub $(machub_run "$n" true)" | tee -a "$results" >&2
    echo "$round $n wrk $(wrk_run "$n")" | tee -a "$results" >&2
    # The disk's flush right after the wrk run, on the same folder: the yardstick of that
    # run's p50 (the probe's p50 moves by 2x from one minute to the next on a shared disk).
    probe=$("$build/bench/fsync_probe" "$work" 200 2>/dev/null |
      sed -nE 's/.*"fdatasync_p50_ms":([0-9.]+).*/\1/p')
    [[ $probe =~ ^[0-9.]+$ ]] || probe=nan  # skipped by the ratio, never a crash
    echo "$round $n probe $probe" | tee -a "$results" >&2
    echo "$round $n nogroup $(machub_run "$n" false)" | tee -a "$results" >&2
    echo "$round $n pg $(pg_run "$n")" | tee -a "$results" >&2
  done
done

fsync_after=$("$build/bench/fsync_probe" "$work" 300 2>/dev/null || echo n/a)
echo "PostgreSQL: $("$pgbin/postgres" --version); $(nproc) cores; $duration s per run, median of $rounds rounds"
echo "fdatasync (4 KiB appends, bench/fsync_probe) before: $fsync_line; after: $fsync_after"
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
by_round = {}
for line in open(sys.argv[1]):
    rnd, n, kind, *vals = line.split()
    rows.setdefault((int(n), kind), []).append([float(v) for v in vals])
    by_round[(rnd, int(n), kind)] = float(vals[0])
def probe_ratios(n):
    """wrk p50 / the fdatasync p50 probed right after it, per round: median (range)."""
    rs = sorted(rows[(n, "wrk")][i][1] / rows[(n, "probe")][i][0]
                for i in range(min(len(rows.get((n, "wrk"), [])), len(rows.get((n, "probe"), []))))
                if rows[(n, "probe")][i][0] > 0)
    if not rs:
        return "n/a"
    return f"{statistics.median(rs):.2f} ({rs[0]:.2f}-{rs[-1]:.2f})"
def round_ratios(n, kind):
    rs = sorted(by_round[(r, m, kind)] / by_round[(r, m, "pg")]
                for (r, m, k) in by_round
                if m == n and k == "pg" and by_round[(r, m, k)] > 0 and (r, m, kind) in by_round)
    return f"{rs[0]:.2f}-{rs[-1]:.2f}" if rs else "n/a"
def med(n, kind, i):
    vals = [r[i] for r in rows.get((n, kind), []) if len(r) > i]
    return statistics.median(vals) if vals else float("nan")
def errs(n, kind):
    return str(int(sum(r[3] for r in rows.get((n, kind), []))))
print("Clients' view, durable sales per second (machub: `machub loadgen` and wrk; PostgreSQL: pgbench):")
print()
print("| clients | machub (loadgen) sales/s | p50 ms | p99 ms | machub (wrk) sales/s | p50 ms | p99 ms "
      "| wrk p50 / fdatasync p50 per round | PostgreSQL tps | p50 ms | p99 ms | loadgen / PG | wrk / PG (per round) "
      "| machub no-group sales/s | hub peak RSS MB (loadgen, wrk) | errors (loadgen, wrk, no-group, PG) |")
print("|" + "---|" * 16)
for n in (1, 8, 64):
    m = [med(n, "machub", i) for i in range(5)]
    w = [med(n, "wrk", i) for i in range(5)]
    g = [med(n, "nogroup", i) for i in range(5)]
    p = [med(n, "pg", i) for i in range(4)]
    ratio = lambda a: f"{a / p[0]:.2f}x" if p[0] > 0 else "n/a"
    print(f"| {n} | {m[0]:.0f} | {m[1]:.2f} | {m[2]:.2f} | {w[0]:.0f} | {w[1]:.2f} | {w[2]:.2f} "
          f"| {probe_ratios(n)} | {p[0]:.0f} | {p[1]:.2f} | {p[2]:.2f} | {ratio(m[0])} "
          f"| {ratio(w[0])} ({round_ratios(n, 'wrk')}) | {g[0]:.0f} "
          f"| {m[4] / 1024:.1f}, {w[4] / 1024:.1f} "
          f"| {errs(n, 'machub')}, {errs(n, 'wrk')}, {errs(n, 'nogroup')}, {errs(n, 'pg')} |")
print()
print("per-run figures (round clients kind sales_or_tps p50_ms p99_ms errors [peak_rss_kB]):")
for line in open(sys.argv[1]):
    print("  " + line.rstrip())
PY

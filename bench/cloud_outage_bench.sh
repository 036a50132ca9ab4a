#!/bin/bash
# Sale latency at 8 terminals with the cloud down vs up (issue 3): an outage of S3 must
# not slow selling down beyond noise, because the uploader never blocks the journal writer.
#
#   bench/cloud_outage_bench.sh [--sink s3|dynamodb] [SECONDS] [ROUNDS]
#                                       (default s3, 10 s per run, 3 rounds)
#
# One hub (release-test build, uploads on, 8 terminals) uploads to a throw-away Ceph RGW
# (tests/peers/rgw.sh) through tests/peers/fault_proxy. Each round runs `machub loadgen`
# open loop at RATE sales/s in total (default 2000/s, well below saturation, so latencies
# compare) in four cloud states, ABAC order to cancel drift:
#   up          proxy passes, RGW answers; measured only after the backlog left by the
#               previous outage has drained (at most one partial batch left)
#   blackhole   proxy accepts connections and never answers (the connections open at
#               the switch are reset): a request hangs until the S3 client's low-speed
#               timeout (30 s), also the one in flight when the cloud comes back
#   rgw-down    radosgw stopped (`rgw.sh stop-gateway`): every upload fails at once (the
#               proxy's upstream connect is refused and it resets the client connection)
# then one closed-loop round (up, blackhole, rgw-down) for throughput. It prints every
# run, a table of medians per state with the down/up ratios of p50 and p99, and a verdict
# (an outage state whose median p50 or p99 exceeds the up median by more than the up
# runs' own largest deviation from it, at least 10 %, is flagged; no verdict below 3
# rounds), and finally lets the cloud back and shows the backlog drain: time to the first
# upload and to an empty backlog, objects in RGW, and `machub verify --bucket` over them.
# The bucket is created with curl's own SigV4 signing (--aws-sigv4).
#
# --sink dynamodb (issue 10): the same load and states for the DynamoDB sink. The hub's S3
# side writes to the local folder sync.dir (the same work in every state); the DynamoDB
# sink writes to dynalite (tests/peers/dynalite.sh, tables made by `machub dynamodb
# create-tables`) through the fault proxy. States up, blackhole (the DynamoDB request in
# flight hangs until sync.dynamodb.request_timeout_ms, 30 s) and dynalite-down
# (`dynalite.sh outage`: connection refused). "up" waits for the sink's backlog to be under
# one chunk (500 entries) in state ok or idle; "network upload failures" are the sink's
# retryable_errors; the final check scans the sales table with awscli (every seq 1..last
# exactly once). The default RATE is 400/s there: dynalite takes about 700 items/s on this
# machine (docs/BENCHMARKS.md), and an up run must not build a backlog it cannot drain.
#
# Environment: RATE (open-loop sales/s, default 2000; 400 with --sink dynamodb), BUILD_DIR (default
# build/release-test, configured with that preset and built here; another folder must be
# configured already), KEEP_WORK=1 (keep the hub's data and logs). Needs what rgw.sh
# needs (Ceph packages, curl, perl) and python3; with --sink dynamodb, node with dynalite
# (scripts/install-deps.sh --test) and awscli instead of Ceph.
set -euo pipefail
cd "$(dirname "$0")/.."
# Everything talks to loopback; a proxy from the environment would sit in the way.
unset http_proxy https_proxy HTTPS_PROXY all_proxy ALL_PROXY
sink=s3
if [ "${1:-}" = --sink ]; then
  sink="${2:-}"
  shift 2
fi
case "$sink" in
s3) down_state=rgw-down default_rate=2000 ;;
dynamodb) down_state=dynalite-down default_rate=400 ;;
*)
  echo "usage: $0 [--sink s3|dynamodb] [SECONDS] [ROUNDS]" >&2
  exit 2
  ;;
esac
secs="${1:-10}"
rounds="${2:-3}"
rate="${RATE:-$default_rate}"
terminals=8
build="${BUILD_DIR:-build/release-test}"
if [ "$build" = build/release-test ]; then
  cmake --preset release-test >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target machub fault_proxy >/dev/null
bin="$build/src/app/machub"
proxy_bin=$(find "$build" -name fault_proxy -type f -perm -u+x | head -n 1)
if [ ! -x "$bin" ] || [ -z "$proxy_bin" ]; then
  echo "machub or fault_proxy not built in $build" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/machub-outage-XXXXXX")
hub="" proxy=""
cleanup() {
  [ -n "$hub" ] && kill -TERM "$hub" 2>/dev/null && wait "$hub" 2>/dev/null || true
  [ -n "$proxy" ] && kill -TERM "$proxy" 2>/dev/null && wait "$proxy" 2>/dev/null || true
  [ -f "$work/rgw/env" ] && tests/peers/rgw.sh stop "$work/rgw" >/dev/null 2>&1 || true
  [ -f "$work/dynalite/env" ] &&
    tests/peers/dynalite.sh stop "$work/dynalite" >/dev/null 2>&1 || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "work folder kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# --- the peer (RGW and a bucket, or dynalite and its tables), then the proxy ---
bucket=machub-bench
# awscli and the hub's DynamoDB client talk to dynalite, which checks no signature.
ddb_key=MACHUBBENCHDUMMY0000 ddb_secret=machubBenchDummySecret000000000000000000
aws_ddb() {  # aws_ddb ARGS: `aws dynamodb ARGS` against dynalite (not through the proxy)
  AWS_ACCESS_KEY_ID=$ddb_key AWS_SECRET_ACCESS_KEY=$ddb_secret AWS_DEFAULT_REGION=us-east-1 \
    AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    "$aws" dynamodb "$@" --endpoint-url "$DYNALITE_ENDPOINT" --output json
}
dynalite_alive() {
  # shellcheck disable=SC1091
  . "$work/dynalite/env"
  [ -r "/proc/$DYNALITE_PID/status" ] &&
    ! grep -q '^State:[[:space:]]*[ZX]' "/proc/$DYNALITE_PID/status"
}
if [ "$sink" = dynamodb ]; then
  aws=/usr/bin/aws
  [ -x "$aws" ] || aws=$(command -v aws) || { echo "awscli not installed" >&2; exit 1; }
  DYNALITE_WATCH_PID=$$ tests/peers/dynalite.sh start "$work/dynalite" >/dev/null
  # shellcheck disable=SC1091
  . "$work/dynalite/env"
  "$bin" dynamodb create-tables --data-dir "$work/ddb-admin" \
    --sync-dynamodb-endpoint "$DYNALITE_ENDPOINT" --sync-access-key-id "$ddb_key" \
    --sync-secret-access-key "$ddb_secret" --log-level warn >/dev/null
  peer_port=$DYNALITE_PORT
  peer_desc="dynalite $DYNALITE_ENDPOINT (S3 side: the local folder)"
else
RGW_WATCH_PID=$$ tests/peers/rgw.sh start "$work/rgw" >/dev/null
# shellcheck disable=SC1091
. "$work/rgw/env"
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
s3curl() {  # s3curl METHOD PATH [CURL ARGS]: one SigV4-signed request to RGW, body-less
  local method=$1 path=$2
  shift 2
  curl -sS -X "$method" -H "x-amz-content-sha256: $empty_sha" \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$RGW_ACCESS_KEY:$RGW_SECRET_KEY" "$@" \
    "$RGW_ENDPOINT$path"
}
code=$(s3curl PUT "/$bucket" -o /dev/null -w '%{http_code}')
[ "$code" = 200 ] || { echo "creating bucket $bucket: HTTP $code" >&2; exit 1; }
  peer_port=$RGW_PORT
  peer_desc="RGW $RGW_ENDPOINT"
fi

"$proxy_bin" --target "127.0.0.1:$peer_port" --exit-with-parent > "$work/proxy.out" &
proxy=$!
for _ in $(seq 100); do [ -s "$work/proxy.out" ] && break; sleep 0.05; done
proxy_port=$(sed -E 's/.*port=([0-9]+).*/\1/' "$work/proxy.out")
control_port=$(sed -E 's/.*control=([0-9]+).*/\1/' "$work/proxy.out")
proxy_cmd() {  # proxy_cmd COMMAND: one control command, fails unless answered "ok"
  local answer
  exec 3<>"/dev/tcp/127.0.0.1/$control_port"
  echo "$1" >&3
  read -r answer <&3
  exec 3<&-
  [[ "$answer" == ok* ]] || { echo "fault_proxy $1: $answer" >&2; return 1; }
}

# --- hub ---
data="$work/data"
mkdir -p "$data"
"$bin" token create --data-dir "$data" --count "$terminals" --prefix T > "$work/tokens" 2>/dev/null
# Status and metrics need a manager token (docs/API.md, roles); it sells nothing.
token=$("$bin" token create --data-dir "$data" --terminal M01 --role manager 2>/dev/null |
  cut -d' ' -f2)
if [ "$sink" = dynamodb ]; then
  sync_args=(--sync-dir "$work/s3" --sync-dynamodb-enabled true
    --sync-dynamodb-endpoint "http://127.0.0.1:$proxy_port" --sync-access-key-id "$ddb_key"
    --sync-secret-access-key "$ddb_secret")
else
  sync_args=(--sync-bucket "$bucket" --sync-endpoint "http://127.0.0.1:$proxy_port"
    --sync-addressing path --sync-access-key-id "$RGW_ACCESS_KEY"
    --sync-secret-access-key "$RGW_SECRET_KEY")
fi
"$bin" serve --data-dir "$data" --listen 127.0.0.1:0 --ready-file "$work/ready" \
  --store-id S001 --rate-per-terminal 0 --demo-token false --log-level info \
  "${sync_args[@]}" > "$work/hub.log" 2>&1 &
hub=$!
for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
[ -s "$work/ready" ] || { echo "hub did not start:" >&2; cat "$work/hub.log" >&2; exit 1; }
port=$(cat "$work/ready")
url="http://127.0.0.1:$port"

status() { curl -sS -H "Authorization: Bearer $token" "$url/v1/status"; }
field() {  # field EXPR: a Python expression over the status JSON `s`
  status | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
metric() {  # metric NAME_WITH_LABELS: its value (0 when absent)
  curl -sS -H "Authorization: Bearer $token" "$url/metrics" |
    awk -v m="$1" '$1 == m {v=$2} END {print v == "" ? 0 : v}'
}

# --- cloud states ---
gateway_down=false
peer_up() {  # the peer answers again (a dynalite that died of an aborted request, too)
  if [ "$sink" = dynamodb ]; then
    # dynalite 4.0.0 throws on a request aborted mid-body, which a proxy reset can cause.
    if $gateway_down || ! dynalite_alive; then
      tests/peers/dynalite.sh start "$work/dynalite" >/dev/null
    fi
  elif $gateway_down; then
    tests/peers/rgw.sh start-gateway "$work/rgw" >/dev/null
  fi
  gateway_down=false
}
to_up() {
  peer_up
  # Connections a blackhole holds are not reset: the request in flight ends by the S3
  # client's own timeouts, as when a link comes back, so the recovery times are honest.
  proxy_cmd pass
}
to_blackhole() { proxy_cmd blackhole; proxy_cmd drop; }
to_down() {
  if [ "$sink" = dynamodb ]; then
    dynalite_alive && tests/peers/dynalite.sh outage "$work/dynalite" >/dev/null
  else
    tests/peers/rgw.sh stop-gateway "$work/rgw" >/dev/null
  fi
  gateway_down=true
}

# What "drained" and "uploaded" mean per sink (Python expressions over the status `s`).
if [ "$sink" = dynamodb ]; then
  success_expr='s["cloud"]["dynamodb"]["last_success_ms"]'
  drained_expr='s["cloud"]["dynamodb"]["backlog"] < 500 and
    s["cloud"]["dynamodb"]["state"] in ("ok", "idle")'
  backlog_expr='s["cloud"]["dynamodb"]["backlog"]'
  cloud_expr='s["cloud"]["dynamodb"]["state"]'
  failures_now() { field 's["cloud"]["dynamodb"]["retryable_errors"]'; }
else
  success_expr='s["cloud"]["last_success_at"]'
  drained_expr='s["backlog"]["sales"] < 5000 and s["cloud"]["state"] == "online"'
  backlog_expr='s["backlog"]["sales"]'
  cloud_expr='s["cloud"]["state"]'
  failures_now() { metric 'machub_upload_failures_total{reason="network"}'; }
fi

# After to_up: wait until the backlog is back to at most one partial batch
# (sync.batch_max_sales = 5000; DynamoDB: one chunk, 500) with the state online (ok);
# after an outage (argument "outage")
# also until an upload has succeeded since the switch, because during a blackhole the
# status keeps its last figures. Prints "first_upload_s drained_s".
wait_drained() {
  local t0 first="" last_before now_success deadline=$((SECONDS + 180))
  t0=$(date +%s.%N)
  last_before=$(field "$success_expr")
  while [ "$SECONDS" -lt "$deadline" ]; do
    now_success=$(field "$success_expr")
    if [ -z "$first" ] && [ "$now_success" != "$last_before" ]; then
      first=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
    fi
    if { [ -n "$first" ] || [ "${1:-}" != outage ]; } &&
      [ "$(field "$drained_expr")" = True ]; then
      echo "${first:-0.0} $(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")"
      return 0
    fi
    sleep 0.2
  done
  echo "backlog did not drain in 180 s: $(status)" >&2
  return 1
}

seed=100
run() {  # run STATE LOOP ROUND: one loadgen run in the current state -> a JSON line in runs
  local state=$1 loop=$2 round=$3 r=0 fail_before fail_after
  seed=$((seed + 1))
  [ "$loop" = closed ] || r=$rate
  fail_before=$(failures_now)
  local out
  out=$("$bin" loadgen --url "$url" --tokens "$work/tokens" --terminals "$terminals" \
    --duration "$secs" --rate "$r" --retry-percent 0 --refund-percent 5 --seed "$seed" \
    2>>"$work/loadgen.txt" | tail -n 1)
  fail_after=$(failures_now)
  local st
  st=$(status)
  python3 - "$state" "$loop" "$round" "$out" "$st" "$fail_before" "$fail_after" \
    "$work/runs.jsonl" "$cloud_expr" "$backlog_expr" <<'PY'
import json, sys
state, loop, rnd, line, st, fb, fa, runs, cloud_expr, backlog_expr = sys.argv[1:11]
r = json.loads(line); s = json.loads(st)
errors = sum(v for k, v in r.get("by_status", {}).items() if not k.startswith("2")) + r.get("conn_errors", 0)
row = {"state": state, "loop": loop, "round": int(rnd), "tput": r["throughput_per_s"],
       "p50": r["p50_ms"], "p95": r["p95_ms"], "p99": r["p99_ms"], "max": r["max_ms"],
       "errors": errors, "cloud": eval(cloud_expr), "backlog": eval(backlog_expr),
       "upload_failures": float(fa) - float(fb)}
with open(runs, "a") as f:
    f.write(json.dumps(row) + "\n")
print(f"| {rnd} | {state} | {loop} | {row['tput']:.0f} | {row['p50']:.2f} | {row['p95']:.2f} | "
      f"{row['p99']:.2f} | {row['max']:.2f} | {errors} | {row['cloud']} | {row['backlog']} | "
      f"{row['upload_failures']:.0f} |")
PY
}

echo "sink $sink: hub $url, $peer_desc behind fault_proxy :$proxy_port; $terminals terminals," \
  "$secs s per run, $rounds rounds, open loop $rate sales/s"
echo
echo "| round | cloud | loop | sales/s | p50 ms | p95 ms | p99 ms | max ms | errors | cloud state after | backlog after | network upload failures during run |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
recovery=()
back_up() {  # back_up AFTER: the cloud comes back after AFTER; wait for the drain, note it
  local times
  to_up
  times=$(wait_drained outage)
  recovery+=("after $1: first upload ${times% *} s, backlog < 1 batch ${times#* } s")
}
for round in $(seq "$rounds"); do
  if [ "$round" = 1 ]; then to_up; wait_drained >/dev/null; else back_up "$down_state"; fi
  run up open "$round"
  to_blackhole; run blackhole open "$round"
  back_up blackhole; run up open "$round"
  to_down; run "$down_state" open "$round"
done
back_up "$down_state"; run up closed 0
to_blackhole; run blackhole closed 0
back_up blackhole
to_down; run "$down_state" closed 0

echo
python3 - "$work/runs.jsonl" "$rounds" "$down_state" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
rounds = int(sys.argv[2])
down = sys.argv[3]
def med(state, loop, key):
    v = [r[key] for r in runs if r["state"] == state and r["loop"] == loop]
    return statistics.median(v) if v else float("nan")
print("Medians per state (open loop: all rounds; closed loop: one run each):")
print()
print("| loop | cloud | runs | sales/s | p50 ms | p95 ms | p99 ms | p99 range ms | down/up p50 | down/up p99 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for loop in ("open", "closed"):
    up50, up99 = med("up", loop, "p50"), med("up", loop, "p99")
    for state in ("up", "blackhole", down):
        n = sum(1 for r in runs if r["state"] == state and r["loop"] == loop)
        p50, p99 = med(state, loop, "p50"), med(state, loop, "p99")
        ratio = "" if state == "up" else f"{p50 / up50:.2f}"
        ratio99 = "" if state == "up" else f"{p99 / up99:.2f}"
        p99s = [r["p99"] for r in runs if r["state"] == state and r["loop"] == loop]
        span = f"{min(p99s):.2f}-{max(p99s):.2f}" if p99s else ""
        print(f"| {loop} | {state} | {n} | {med(state, loop, 'tput'):.0f} | {p50:.2f} | "
              f"{med(state, loop, 'p95'):.2f} | {p99:.2f} | {span} | {ratio} | {ratio99} |")
# Noise: how much the up runs alone differ from their median (max relative deviation),
# at least 10 %. A down state whose median is slower than up by more than that is a finding.
ups = [r for r in runs if r["state"] == "up" and r["loop"] == "open"]
def noise(key):
    m = statistics.median(r[key] for r in ups)
    return max(0.10, max(abs(r[key] - m) / m for r in ups))
n50, n99 = noise("p50"), noise("p99")
worse = []
for state in ("blackhole", down):
    for key, n in (("p50", n50), ("p99", n99)):
        ratio = med(state, "open", key) / med("up", "open", key)
        if ratio > 1 + n:
            worse.append(f"{state} {key} x{ratio:.2f} (noise +/-{n * 100:.0f} %)")
errors = sum(r["errors"] for r in runs)
print()
print(f"Noise band (largest deviation of an open-loop up run from the up median, >= 10 %): "
      f"p50 +/-{n50 * 100:.0f} %, p99 +/-{n99 * 100:.0f} %; errors in all runs: {errors}")
if rounds < 3:
    print(f"VERDICT: none: {rounds} round(s) are too few to know the noise (use at least 3)" +
          ("; would flag: " + "; ".join(worse) if worse else "") +
          (f"; {errors} errors" if errors else ""))
elif worse or errors:
    print("VERDICT: the outage HURTS sale latency beyond noise: " + "; ".join(worse) +
          (f"; {errors} errors" if errors else ""))
else:
    print("VERDICT: no difference beyond noise: sale latency with the cloud down is within "
          "the up runs' own spread (open loop, p50 and p99).")
PY

# --- the cloud comes back: the backlog drains, the peer holds every sale exactly once ---
backlog_before=$(field "$backlog_expr")
t0=$(date +%s.%N)
back_up "$down_state"
echo
echo "Recovery, from the switch back to up (a blackhole's request in flight ends by its timeout):"
printf -- '- %s\n' "${recovery[@]}"
deadline=$((SECONDS + 180))
while [ "$SECONDS" -lt "$deadline" ] && [ "$(field "$backlog_expr")" != 0 ]; do
  sleep 0.2
done
drain_s=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
last_seq=$(field 's["journal"]["last_seq"]')
echo "Final drain: backlog $backlog_before sales -> $(field "$backlog_expr") in ${drain_s} s" \
  "(S3: the last partial batch waits for sync.batch_max_age_s = 60 s); journal last_seq" \
  "$last_seq; cloud: $(field 'json.dumps(s["cloud"])')"
echo "Upload metrics: $(curl -sS -H "Authorization: Bearer $token" "$url/metrics" |
  grep -E '^machub_(upload|backlog|batches_quarantined)' | tr '\n' ' ')"
echo "Hub log, sync state changes: $(grep -c '"event":"sync_state"' "$work/hub.log" || true)"
if [ "$sink" = dynamodb ]; then
  # Read back with awscli (it follows LastEvaluatedKey itself): every seq exactly once.
  aws_ddb scan --table-name machub-sales --projection-expression seq --page-size 1000 \
    > "$work/scan.json"
  python3 - "$work/scan.json" "$last_seq" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["Items"]; last = int(sys.argv[2])
seqs = sorted(int(i["seq"]["N"]) for i in items)
ok = seqs == list(range(1, last + 1))
print(("DRAIN OK" if ok else "DRAIN FAILED") +
      f": the sales table holds {len(items)} items, {len(set(seqs))} distinct seqs "
      f"{seqs[0] if seqs else '-'}..{seqs[-1] if seqs else '-'}, of the journal's {last} "
      "(aws dynamodb scan)")
sys.exit(0 if ok else 1)
PY
  exit $?
fi
verify=$("$bin" verify --bucket "$bucket" --store-id S001 --sync-endpoint "$RGW_ENDPOINT" \
  --sync-addressing path --sync-access-key-id "$RGW_ACCESS_KEY" \
  --sync-secret-access-key "$RGW_SECRET_KEY" --log-level warn) && vrc=0 || vrc=$?
echo "machub verify --bucket $bucket (exit $vrc): $verify"
python3 - "$verify" "$last_seq" <<'PY'
import json, sys
v = json.loads(sys.argv[1]); last = int(sys.argv[2])
ok = v["ok"] and v["sales"] == last and v["first_seq"] == 1 and v["last_seq"] == last
print(("DRAIN OK" if ok else "DRAIN FAILED") +
      f": {v['objects']} objects hold seqs {v['first_seq']}..{v['last_seq']} "
      f"({v['sales']} sales) of the journal's {last}")
sys.exit(0 if ok else 1)
PY

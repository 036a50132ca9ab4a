#!/bin/sh
# Greengrass lifecycle simulation: runs the shipped recipe's Run script the way the
# nucleus does, as ggc_user, on a nucleus-like folder tree, and proves the two failures of
# the seed cannot happen with what we ship (and that this test would notice if they did).
#
# Usage: tests/deploy/lifecycle_test.sh MACHUB_BINARY SOURCE_DIR DEPLOY_S3_TOOL
# Root only (it creates ggc_user/ggc_group when missing, removes only what it created, and
# chowns files); otherwise it prints SKIP and exits 77 (ctest: skipped).
#
# What it does, per case, in a fresh temporary root (mode 0755, like /greengrass/v2):
#   packages/artifacts/<name>/<version>/machub   folders 0755 root, the file chowned to
#       ggc_user:ggc_group with the mode `machub greengrass render --what modes` derives
#       from the recipe's Permission (nucleus' Permission.toFileSystemPermission():
#       Read OWNER + Execute OWNER = 0550 on current nuclei, 0500 on older ones; the
#       default Execute NONE = 0440 / 0400)
#   work/<name>/                                  0755, owned by ggc_user (the cwd)
#   configuration = DefaultConfiguration, then deploy/greengrass/config-update.json, then
#       this test's own MERGE (loopback port, a terminal token hash), as deployments would
#   sudo -n -E -H -u ggc_user -g ggc_group -- sh -c "<interpolated Run script>"
#       (setpriv when sudo is missing), with AWS_CONTAINER_CREDENTIALS_FULL_URI and
#       AWS_CONTAINER_AUTHORIZATION_TOKEN of a fake Token Exchange endpoint (fake_tes.py).
# The hub serves HTTPS (the recipe's tls_auto): every request checks it against the store CA
# it created in work/<name>/data/tls/ca.pem (curl --cacert).
# Checks: /healthz 200, a sale 201, the hub runs as ggc_user in the work folder with the
# container-credential variables, every file ggc_user created is under work/<name>/, the
# journal is in work/<name>/data, SIGTERM stops it with status 0.
# Upload with the container credentials: a throw-away Ceph RGW (tests/peers/rgw.sh), a
# bucket created with deploy_s3_tool, a second fake Token Exchange endpoint that hands out
# the RGW keys, and a MERGE {"sync": {bucket, endpoint, region, ...}} in the greengrass-cli
# shape, merged over the defaults as the nucleus merges; the re-interpolated Run script
# runs as ggc_user with only AWS_CONTAINER_CREDENTIALS_FULL_URI/_AUTHORIZATION_TOKEN (no
# static keys anywhere). Checks: `machub verify` on the bucket counts every posted sale,
# the keys are <prefix>/sales/store=<id>/date=.../..., and the endpoint logged a 200 for
# the token. Negative control: a wrong authorization token gets 403 from the endpoint,
# nothing reaches the bucket, the sale is still acknowledged and /v1/status shows the
# credentials error.
# Negative controls: the same recipe with Execute: NONE fails with "Permission denied"
# (exit 126) and is flagged by the checker; a config update with lower-case "merge" is
# flagged by the checker and, applied, changes nothing.
set -eu

MACHUB="$1"
SRC="$2"
S3TOOL="${3:-}"  # deploy_s3_tool (tests/deploy/s3_tool.cc); the upload case fails without it
# The recipe tools: the host tool machub-greengrass when given, else `machub greengrass`.
GGTOOL="${4:-}"
gg() {
  if [ -n "$GGTOOL" ]; then "$GGTOOL" "$@"; else "$MACHUB" greengrass "$@"; fi
}
RECIPE="$SRC/deploy/greengrass/recipe.yaml"
COMPONENT="com.machub.StoreHub"
PY=/usr/bin/python3

if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: lifecycle_test.sh needs root (creates ggc_user, chowns artifacts, runs sudo -u)"
  exit 77
fi
[ -x "$PY" ] || PY="$(command -v python3)"

passed=0
failed=0
pass() {
  passed=$((passed + 1))
  echo "PASS: $*"
}
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
}

tmp="$(mktemp -d /tmp/machub-gg.XXXXXX)"
chmod 0755 "$tmp"
created_user=0
created_group=0
tes_pids=""
hub_pid=""
rgw_dir=""
cleanup() {
  if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then kill -KILL "$hub_pid" 2>/dev/null || true; fi
  pkill -KILL -u ggc_user -f "$tmp/" 2>/dev/null || true
  for p in $tes_pids; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null || true; fi
  done
  # Stops every daemon of the cluster, also one half-started (rgw.sh reads DIR/env and the
  # daemons' pid files); its watchdog covers a test killed before this trap runs.
  if [ -n "$rgw_dir" ]; then bash "$SRC/tests/peers/rgw.sh" stop "$rgw_dir" >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
  if [ "$created_user" -eq 1 ]; then userdel ggc_user 2>/dev/null || true; fi
  if [ "$created_group" -eq 1 ]; then groupdel ggc_group 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

# --- the component user, as the installer's --component-default-user creates it ---------
if ! getent group ggc_group >/dev/null; then
  groupadd --system ggc_group
  created_group=1
fi
if ! getent passwd ggc_user >/dev/null; then
  useradd --system --gid ggc_group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin ggc_user
  created_user=1
fi

# How the nucleus starts a step as another user (UnixPlatform's SudoDecorator). Called in a
# subshell, it replaces that subshell, so $! of `( ... ) &` is the sudo process.
exec_as_ggc() {
  if command -v sudo >/dev/null 2>&1; then
    exec sudo -n -E -H -u ggc_user -g ggc_group -- sh -c "$1"
  else
    HOME=/nonexistent
    export HOME
    exec setpriv --reuid ggc_user --regid ggc_group --init-groups -- sh -c "$1"
  fi
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- a fake Token Exchange Service ------------------------------------------------------
# start_tes PORT_FILE TOKEN ACCESS_KEY SECRET_KEY: sets tes_port; requests are logged to
# PORT_FILE.log as "<status> <path>".
start_tes() {
  "$PY" "$SRC/tests/deploy/fake_tes.py" "$1" "$2" "$3" "$4" &
  tes_pids="$tes_pids $!"
  i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1))
    [ "$i" -le 100 ] || { echo "FAIL: fake TES did not start"; exit 1; }
    sleep 0.1
  done
  tes_port="$(cat "$1")"
}
tes_token="tes-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
start_tes "$tmp/tes.port" "$tes_token" FAKETESACCESSKEY0000 fakeTesSecretKey000000000000000000000000
# What the nucleus puts in a component's environment (static keys would win over the
# container provider, so none are passed on; nor a shared credentials file or profile).
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE \
  AWS_SHARED_CREDENTIALS_FILE AWS_CONFIG_FILE AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE 2>/dev/null || true
export AWS_CONTAINER_CREDENTIALS_FULL_URI="http://localhost:$tes_port/2016-11-01/credentialprovider/"
export AWS_CONTAINER_AUTHORIZATION_TOKEN="$tes_token"
export AWS_REGION="us-east-1"
export AWS_IOT_THING_NAME="machub-test-device"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $tes_token" "$AWS_CONTAINER_CREDENTIALS_FULL_URI")"
[ "$code" = "200" ] && pass "fake TES answers the container-credential request" ||
  fail "fake TES answered $code"

# --- configuration updates: the shipped example, then this test's ------------------------
port="$(free_port)"
token="mh_lifecycle$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
hash="$("$MACHUB" token hash "$token")"
cat >"$tmp/test-update.json" <<EOF
{"$COMPONENT": {"MERGE": {"listen": "127.0.0.1:$port", "store_id": "S777",
                          "manager_tokens": ["T01:$hash"]}}}
EOF
if gg check --strict "$RECIPE" "$SRC/deploy/greengrass/config-update.json" \
  "$SRC/deploy/greengrass/deployment.json" "$tmp/test-update.json" >"$tmp/check.out" 2>&1; then
  pass "shipped recipe and updates pass machub greengrass check --strict"
else
  fail "shipped recipe or updates have problems:"
  cat "$tmp/check.out"
fi

render() {  # render RECIPE ROOT WHAT [extra args]
  r="$1" root="$2" what="$3"
  shift 3
  gg render "$r" --root "$root" --arch amd64 --what "$what" \
    --update "$SRC/deploy/greengrass/config-update.json" --update "$tmp/test-update.json" "$@"
}

# layout RECIPE ROOT [--legacy-modes]: the nucleus' folders, artifact and work folder.
layout() {
  r="$1" root="$2"
  shift 2
  mkdir -p "$root"
  chmod 0755 "$root"
  eval "$(render "$r" "$root" paths | sed 's/^\([a-z]*\)=\(.*\)$/p_\1="\2"/')"
  for d in "$root/packages" "$root/packages/artifacts" "$root/packages/artifacts/$COMPONENT" \
    "$p_artifacts" "$root/work" "$root/logs"; do
    mkdir -p "$d"
    chmod 0755 "$d"
  done
  mkdir -p "$p_work"
  chown ggc_user:ggc_group "$p_work"
  chmod 0755 "$p_work"
  render "$r" "$root" modes "$@" | while read -r file mode unarchive; do
    [ "$unarchive" = "NONE" ] || { echo "FAIL: unexpected Unarchive $unarchive"; exit 1; }
    cp "$MACHUB" "$p_artifacts/$file"
    chown ggc_user:ggc_group "$p_artifacts/$file"
    chmod "$mode" "$p_artifacts/$file"
  done
}

# Files owned by ggc_user, everywhere a process may leave some.
owned_files() {
  find "$tmp" /tmp /var/tmp /dev/shm -xdev -user ggc_user 2>/dev/null | sort
}

sale_json() {
  now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  cat <<EOF
{"id": "gg-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')", "terminal_id": "T01", "created_at": "$now",
 "currency": "USD", "lines": [{"sku": "0001", "name": "Coffee", "qty": "2", "unit_price": "3.50",
 "tax_rate": "0.0825"}], "payments": [{"method": "cash", "amount": "8.00"}], "total": "7.58"}
EOF
}

# hub_curl PATH [curl args]: the hub over HTTPS (the recipe's tls_auto), checked against the
# store CA the hub created in its data folder, as a terminal would be set up.
hub_curl() {
  path="$1"
  shift
  curl --cacert "$p_work/data/tls/ca.pem" "$@" "https://127.0.0.1:$port$path"
}

# start_hub NAME ROOT SCRIPT: runs SCRIPT as the nucleus does (as ggc_user, in {work:path},
# with the exported environment), output to ROOT/logs; sets hub_pid. Returns 0 once
# /healthz answers, 1 (after stopping it and showing its log) otherwise.
start_hub() {
  (cd "$p_work" && exec_as_ggc "$3") >"$2/logs/$COMPONENT.stdout" 2>"$2/logs/$COMPONENT.stderr" &
  hub_pid=$!
  i=0
  while [ "$i" -lt 300 ]; do
    if hub_curl /healthz -fsS -o /dev/null 2>/dev/null; then return 0; fi
    kill -0 "$hub_pid" 2>/dev/null || break
    i=$((i + 1))
    sleep 0.1
  done
  fail "[$1] the hub did not answer /healthz"
  tail -n 20 "$2/logs/$COMPONENT.stdout" "$2/logs/$COMPONENT.stderr"
  kill -TERM "$hub_pid" 2>/dev/null || true
  wait "$hub_pid" 2>/dev/null || true
  hub_pid=""
  return 1
}

# stop_hub NAME: SIGTERM, the hub must exit with status 0.
stop_hub() {
  kill -TERM "$hub_pid" 2>/dev/null || true
  status=0
  wait "$hub_pid" || status=$?
  hub_pid=""
  [ "$status" -eq 0 ] && pass "[$1] SIGTERM: clean exit" || fail "[$1] exit status $status after SIGTERM"
}

# post_sale ROOT: prints the HTTP status of POST /v1/sales (000: no answer; the answer in
# ROOT/answer.json).
post_sale() {
  sale_json >"$1/sale.json"
  hub_curl /v1/sales -sS -o "$1/answer.json" -w '%{http_code}' -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data-binary @"$1/sale.json" || true
}

# hub_status ROOT: GET /v1/status into ROOT/status.json (emptied when there is no answer).
hub_status() {
  hub_curl /v1/status -sS -o "$1/status.json" -H "Authorization: Bearer $token" ||
    : >"$1/status.json"
}

# --- positive runs: current (0550) and older (0500) nucleus modes -------------------------
run_positive() {
  name="$1"
  shift
  root="$tmp/$name"
  layout "$RECIPE" "$root" "$@"
  art="$p_artifacts/machub"
  mode="$(stat -c %a "$art")"
  owner="$(stat -c %U:%G "$art")"
  echo "  [$name] artifact $art mode $mode owner $owner"
  script="$(render "$RECIPE" "$root" script)"
  case "$script" in
    *"{configuration:"*) fail "[$name] uninterpolated placeholder in: $script" ;;
    "exec \"$art\" serve "*) ;;
    *) fail "[$name] unexpected Run script: $script" ;;
  esac
  before="$(owned_files)"
  art_before="$(ls -la "$p_artifacts")"
  start_hub "$name" "$root" "$script" || return 0
  pass "[$name] /healthz answered 200"
  code="$(post_sale "$root")"
  if [ "$code" = "201" ]; then pass "[$name] sale recorded (201)"; else
    fail "[$name] sale answered $code: $(cat "$root/answer.json")"
  fi
  # The hub process: user, folder, environment.
  hub="$(pgrep -u ggc_user -f "^$art serve" | head -n 1 || true)"
  if [ -n "$hub" ]; then
    [ "$(readlink "/proc/$hub/cwd")" = "$p_work" ] && pass "[$name] runs in {work:path}" ||
      fail "[$name] cwd is $(readlink "/proc/$hub/cwd")"
    if tr '\0' '\n' <"/proc/$hub/environ" | grep -qx "AWS_CONTAINER_AUTHORIZATION_TOKEN=$tes_token" &&
      tr '\0' '\n' <"/proc/$hub/environ" | grep -q "^AWS_CONTAINER_CREDENTIALS_FULL_URI=http://localhost:$tes_port/"; then
      pass "[$name] container-credential variables reach the hub (sudo -E)"
    else
      fail "[$name] container-credential variables missing in the hub's environment"
    fi
  else
    fail "[$name] no machub process running as ggc_user"
  fi
  # Uploads to a real S3 with these credentials: run_sync below.
  stop_hub "$name"
  [ -f "$p_work/data/journal.db" ] && [ "$(stat -c %U "$p_work/data/journal.db")" = "ggc_user" ] &&
    pass "[$name] journal in {work:path}/data, owned by ggc_user" ||
    fail "[$name] no journal owned by ggc_user in $p_work/data"
  after="$(owned_files)"
  outside="$(printf '%s\n' "$after" | grep -vxF -e "$before" | grep -v "^$p_work/" || true)"
  if [ -z "$outside" ]; then pass "[$name] ggc_user wrote nothing outside {work:path}"; else
    fail "[$name] files written outside the work folder:"
    printf '%s\n' "$outside"
  fi
  [ "$(ls -la "$p_artifacts")" = "$art_before" ] && pass "[$name] artifact folder unchanged" ||
    fail "[$name] the artifact folder changed"
  if grep -q '"event"' "$root/logs/$COMPONENT.stdout" 2>/dev/null || [ -s "$root/logs/$COMPONENT.stdout" ]; then
    pass "[$name] the hub logs to stdout (the component log)"
  else
    fail "[$name] nothing on stdout"
  fi
  if grep -q "$token" "$root/logs/$COMPONENT.stdout" "$root/logs/$COMPONENT.stderr"; then
    fail "[$name] the terminal token appears in the log"
  else
    pass "[$name] no token in the log"
  fi
}

run_positive current
run_positive legacy --legacy-modes

# --- upload with the container credentials, to a real S3 (Ceph RGW) ----------------------
# sync_update FILE PREFIX: the configuration update that turns on uploads, in the exact
# greengrass-cli shape; only the sync keys it names change (the nucleus merges maps key by
# key, so format, batch_max_sales, ... keep their defaults).
sync_update() {
  cat >"$1" <<EOF
{"$COMPONENT": {"MERGE": {"sync": {"enabled": "true", "bucket": "$bucket",
                                   "endpoint": "$RGW_ENDPOINT", "region": "us-east-1",
                                   "prefix": "$2", "batch_max_age_s": "1"}}}}
EOF
}

# s3 ARGS...: deploy_s3_tool with the RGW keys, in its own environment only.
s3() {
  AWS_ACCESS_KEY_ID="$RGW_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$RGW_SECRET_KEY" "$S3TOOL" "$@"
}

# verify_bucket PREFIX: `machub verify` of the store's objects under PREFIX (JSON summary).
verify_bucket() {
  AWS_ACCESS_KEY_ID="$RGW_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$RGW_SECRET_KEY" \
    "$MACHUB" verify --bucket "$bucket" --sync-endpoint "$RGW_ENDPOINT" --sync-region us-east-1 \
    --sync-prefix "$1" --store-id S777
}

# json_field FILE EXPR: a Python expression over the parsed JSON `j` (empty on any error).
json_field() {
  "$PY" -c 'import json, sys
try:
    j = json.load(open(sys.argv[1]))
    print(eval(sys.argv[2]))
except Exception:
    print("")' "$1" "$2"
}

# run_sync NAME PREFIX TES_TOKEN SALES: a fresh root, the Run script re-interpolated with
# the sync update, started with the container-credential variables of the RGW-keyed fake
# TES and TES_TOKEN; posts SALES sales. Leaves the hub running (hub_pid) for the caller.
run_sync() {
  name="$1" prefix="$2" auth="$3" sales="$4"
  root="$tmp/$name"
  sync_update "$tmp/$name-update.json" "$prefix"
  layout "$RECIPE" "$root"
  script="$(render "$RECIPE" "$root" script --update "$tmp/$name-update.json")"
  case "$script" in
    *"--sync-bucket='$bucket'"*"--sync-endpoint='$RGW_ENDPOINT'"*) ;;
    *) fail "[$name] the sync update is not in the Run script: $script" ;;
  esac
  case "$script" in
    *"$RGW_ACCESS_KEY"* | *"$RGW_SECRET_KEY"*) fail "[$name] S3 keys in the Run script" ;;
  esac
  before="$(owned_files)"
  AWS_CONTAINER_CREDENTIALS_FULL_URI="http://localhost:$tes_rgw_port/2016-11-01/credentialprovider/"
  AWS_CONTAINER_AUTHORIZATION_TOKEN="$auth"
  export AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_CONTAINER_AUTHORIZATION_TOKEN
  start_hub "$name" "$root" "$script" || return 1
  hub="$(pgrep -u ggc_user -f "^$p_artifacts/machub serve" | head -n 1 || true)"
  if [ -z "$hub" ]; then
    fail "[$name] no machub process running as ggc_user"
  elif tr '\0' '\n' <"/proc/$hub/environ" | grep -q '^AWS_\(ACCESS_KEY_ID\|SECRET_ACCESS_KEY\|SESSION_TOKEN\|PROFILE\|SHARED_CREDENTIALS_FILE\)='; then
    fail "[$name] static AWS credentials in the hub's environment"
  elif tr '\0' '\n' <"/proc/$hub/environ" | grep -qx "AWS_CONTAINER_AUTHORIZATION_TOKEN=$auth" &&
    ! tr '\0' ' ' <"/proc/$hub/cmdline" | grep -qF -e "$RGW_SECRET_KEY" -e "$RGW_ACCESS_KEY"; then
    pass "[$name] only the container-credential variables (no static keys, none on the command line)"
  else
    fail "[$name] unexpected credentials in the hub's environment or command line"
  fi
  n=0
  while [ "$n" -lt "$sales" ]; do
    n=$((n + 1))
    code="$(post_sale "$root")"
    [ "$code" = "201" ] || fail "[$name] sale $n answered $code: $(cat "$root/answer.json")"
  done
  return 0
}

# check_writes NAME: after the hub stopped, every file ggc_user created since run_sync's
# start is under {work:path}.
check_writes() {
  outside="$(owned_files | grep -vxF -e "$before" | grep -v "^$p_work/" || true)"
  [ -z "$outside" ] && pass "[$1] ggc_user wrote nothing outside {work:path}" ||
    fail "[$1] files written outside the work folder: $outside"
}

if [ -z "$S3TOOL" ] || [ ! -x "$S3TOOL" ]; then
  fail "upload case: no deploy_s3_tool (third argument) given"
else
  rgw_dir="$tmp/rgw"
  if ! RGW_WATCH_PID=$$ bash "$SRC/tests/peers/rgw.sh" start "$rgw_dir" >"$tmp/rgw.start" 2>&1; then
    fail "tests/peers/rgw.sh could not start a Ceph RGW:"
    tail -n 30 "$tmp/rgw.start"
  else
    # RGW_ENDPOINT, RGW_ACCESS_KEY, RGW_SECRET_KEY (shell variables, not exported).
    . "$rgw_dir/env"
    bucket="machub-gg-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
    if s3 mb "$RGW_ENDPOINT" us-east-1 "$bucket" 2>"$tmp/mb.err"; then
      pass "bucket $bucket created on RGW $RGW_ENDPOINT (signed CreateBucket)"
    else
      fail "CreateBucket $bucket: $(cat "$tmp/mb.err")"
    fi
    # The Token Exchange endpoint now hands out the RGW keys: the only way the hub can get
    # them.
    tes_rgw_token="tes-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
    start_tes "$tmp/tes-rgw.port" "$tes_rgw_token" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY"
    tes_rgw_port="$tes_port"
    tes_log="$tmp/tes-rgw.port.log"

    sync_update "$tmp/sync-update.json" gg-ok
    if gg check --strict "$RECIPE" "$tmp/sync-update.json" >"$tmp/sync.check" 2>&1; then
      pass "the sync update passes machub greengrass check --strict"
    else
      fail "the sync update has problems: $(cat "$tmp/sync.check")"
    fi
    render "$RECIPE" "$tmp" config --update "$tmp/sync-update.json" >"$tmp/sync-config.json"
    merged="$(json_field "$tmp/sync-config.json" '(j["store_id"], j["sync"]["bucket"], j["sync"]["prefix"], j["sync"]["format"], j["sync"]["batch_max_sales"], j["sync"]["batch_max_age_s"])')"
    [ "$merged" = "('S777', '$bucket', 'gg-ok', 'jsonl', '5000', '1')" ] &&
      pass "sync MERGE merged key by key over the defaults and earlier updates" ||
      fail "merged configuration: $merged"

    # Positive: the right token. Three sales must reach the bucket.
    if run_sync sync gg-ok "$tes_rgw_token" 3; then
      i=0
      seen=""
      while [ "$i" -lt 60 ]; do
        verify_bucket gg-ok >"$tmp/verify.json" 2>"$tmp/verify.err" || true
        seen="$(json_field "$tmp/verify.json" 'j["sales"]')"
        [ "$seen" = "3" ] && break
        i=$((i + 1))
        sleep 0.5
      done
      if [ "$seen" = "3" ] && [ "$(json_field "$tmp/verify.json" 'j["ok"]')" = "True" ]; then
        pass "[sync] machub verify on the bucket: $(cat "$tmp/verify.json")"
      else
        fail "[sync] the bucket holds ${seen:-no} sales, expected 3: $(cat "$tmp/verify.json" "$tmp/verify.err")"
        tail -n 20 "$tmp/sync/logs/$COMPONENT.stdout" "$tmp/sync/logs/$COMPONENT.stderr"
      fi
      s3 ls "$RGW_ENDPOINT" us-east-1 "$bucket" >"$tmp/listing" 2>&1 || true
      if grep -Eq ' gg-ok/sales/store=S777/date=[0-9]{4}-[0-9]{2}-[0-9]{2}/S777-[0-9]{12}-[0-9]{12}\.jsonl\.gz$' "$tmp/listing"; then
        pass "[sync] object key: $(grep ' gg-ok/sales/' "$tmp/listing" | head -n 1 | cut -d' ' -f2)"
      else
        fail "[sync] no object under gg-ok/sales/store=S777/: $(cat "$tmp/listing")"
      fi
      if grep -qx '200 /2016-11-01/credentialprovider/' "$tes_log" 2>/dev/null &&
        ! grep -q '^403 ' "$tes_log"; then
        pass "[sync] the hub fetched its credentials from the Token Exchange endpoint ($(grep -c '^200 ' "$tes_log") x 200)"
      else
        fail "[sync] fake TES log: $(cat "$tes_log" 2>/dev/null)"
      fi
      hub_status "$tmp/sync"
      state="$(json_field "$tmp/sync/status.json" 'j["cloud"]["state"]')"
      [ "$state" = "online" ] && pass "[sync] /v1/status cloud.state online" ||
        fail "[sync] /v1/status: $(cat "$tmp/sync/status.json")"
      stop_hub sync
      check_writes sync
    fi

    # Negative control: a wrong authorization token. The endpoint refuses (403), nothing
    # is uploaded, the sale is still acknowledged and the status names the problem.
    : >"$tes_log"
    if run_sync sync-badtoken gg-bad "wrong-$tes_rgw_token" 1; then
      i=0
      err=""
      while [ "$i" -lt 60 ]; do
        hub_status "$tmp/sync-badtoken"
        err="$(json_field "$tmp/sync-badtoken/status.json" 'j["cloud"]["last_error"] or ""')"
        [ -n "$err" ] && break
        i=$((i + 1))
        sleep 0.5
      done
      if printf '%s' "$err" | grep -Eqi 'credential|403|unauthori|token'; then
        pass "[sync-badtoken] /v1/status cloud.last_error: $err"
      else
        fail "[sync-badtoken] no credentials error in /v1/status: $(cat "$tmp/sync-badtoken/status.json")"
      fi
      backlog="$(json_field "$tmp/sync-badtoken/status.json" 'j["backlog"]["sales"]')"
      [ "$backlog" = "1" ] && pass "[sync-badtoken] the sale waits in the backlog" ||
        fail "[sync-badtoken] backlog.sales is $backlog, expected 1"
      grep -q '^403 /2016-11-01/credentialprovider/' "$tes_log" && ! grep -q '^200 ' "$tes_log" &&
        pass "[sync-badtoken] the Token Exchange endpoint answered 403 only" ||
        fail "[sync-badtoken] fake TES log: $(cat "$tes_log")"
      s3 ls "$RGW_ENDPOINT" us-east-1 "$bucket" gg-bad/ >"$tmp/listing-bad" 2>&1 || true
      [ ! -s "$tmp/listing-bad" ] && pass "[sync-badtoken] nothing uploaded under gg-bad/" ||
        fail "[sync-badtoken] objects under gg-bad/: $(cat "$tmp/listing-bad")"
      stop_hub sync-badtoken
      check_writes sync-badtoken
    fi
  fi
fi

# --- negative control 1: Execute NONE (the default) -------------------------------------
sed 's/Execute: OWNER/Execute: NONE/' "$RECIPE" >"$tmp/recipe-noexec.yaml"
if gg check "$tmp/recipe-noexec.yaml" >"$tmp/noexec.check" 2>&1; then
  fail "checker accepted a recipe whose artifact has Execute: NONE"
else
  grep -q 'Permission.Execute is NONE' "$tmp/noexec.check" &&
    pass "checker flags Execute: NONE on the run artifact" ||
    { fail "checker message for Execute: NONE"; cat "$tmp/noexec.check"; }
fi
for variant in current legacy; do
  root="$tmp/noexec-$variant"
  if [ "$variant" = legacy ]; then layout "$tmp/recipe-noexec.yaml" "$root" --legacy-modes; else
    layout "$tmp/recipe-noexec.yaml" "$root"; fi
  script="$(render "$tmp/recipe-noexec.yaml" "$root" script)"
  status=0
  (cd "$p_work" && exec_as_ggc "$script") >"$root/out" 2>"$root/err" || status=$?
  mode="$(stat -c %a "$p_artifacts/machub")"
  if [ "$status" -eq 126 ] && grep -q 'Permission denied' "$root/err"; then
    pass "[noexec-$variant] mode $mode: exit 126, \"$(head -n 1 "$root/err")\""
  else
    fail "[noexec-$variant] mode $mode: expected Permission denied, got status $status: $(cat "$root/err")"
  fi
done

# --- negative control 2: lower-case merge -----------------------------------------------
cat >"$tmp/lowercase-update.json" <<EOF
{"$COMPONENT": {"merge": {"store_id": "S999"}}}
EOF
if gg check "$RECIPE" "$tmp/lowercase-update.json" >"$tmp/lower.check" 2>&1; then
  fail "checker accepted a config update with lower-case merge"
else
  grep -q 'lower-case "merge"' "$tmp/lower.check" && pass "checker flags lower-case merge" ||
    { fail "checker message for lower-case merge"; cat "$tmp/lower.check"; }
fi
store="$(gg render "$RECIPE" --update "$tmp/lowercase-update.json" --what config |
  "$PY" -c 'import json, sys; print(json.load(sys.stdin)["store_id"])')"
[ "$store" = "" ] && pass "a lower-case merge changes nothing (store_id stays unset)" ||
  fail "lower-case merge changed store_id to $store"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

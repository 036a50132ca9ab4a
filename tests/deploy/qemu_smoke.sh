#!/bin/sh
# Smoke test of a machub binary, possibly a foreign one under qemu-user: starts
# `machub serve` on a free loopback port with a fresh data folder and one terminal token,
# checks GET /healthz (200), POST /v1/sales (201, then 200 for the same sale again), stops
# it with SIGTERM (exit 0), and prints the process's VmRSS in kB at idle on stdout.
# Under qemu-user that VmRSS is the emulator's, an upper bound for the native process.
#
# Usage: tests/deploy/qemu_smoke.sh EMULATOR BINARY   (EMULATOR "" for a native binary)
# Exit 0 on success; on failure a message on stderr plus the hub's output.
set -eu
emu="$1"
bin="$2"
tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() {
  echo "qemu_smoke.sh: $*" >&2
  for f in "$tmp/out" "$tmp/err"; do [ -f "$f" ] && tail -n 20 "$f" >&2; done
  exit 1
}
run() {
  # shellcheck disable=SC2086
  if [ -n "$emu" ]; then "$emu" "$bin" "$@"; else "$bin" "$@"; fi
}

token="mh_smoke$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
hash="$(run token hash "$token")" || fail "machub token hash failed"
[ "${#hash}" -eq 64 ] || fail "token hash has ${#hash} characters, want 64"
[ "$hash" = "$(printf %s "$token" | sha256sum | cut -d' ' -f1)" ] || fail "token hash differs from sha256sum"

if [ -n "$emu" ]; then
  "$emu" "$bin" serve --listen 127.0.0.1:0 --data-dir "$tmp/data" --ready-file "$tmp/ready" \
    --demo-token=false --terminal-tokens="T01:$hash" >"$tmp/out" 2>"$tmp/err" &
else
  "$bin" serve --listen 127.0.0.1:0 --data-dir "$tmp/data" --ready-file "$tmp/ready" \
    --demo-token=false --terminal-tokens="T01:$hash" >"$tmp/out" 2>"$tmp/err" &
fi
pid=$!
# Wait for the ready file (the hub writes it atomically once it listens); emulated start-up
# takes a second or two, so allow a minute before giving up.
i=0
while [ ! -s "$tmp/ready" ]; do
  kill -0 "$pid" 2>/dev/null || fail "machub exited before listening"
  i=$((i + 1))
  [ "$i" -le 600 ] || fail "machub did not listen within 60 s"
  sleep 0.1
done
port="$(tr -d '\n' <"$tmp/ready")"
base="http://127.0.0.1:$port"

code="$(curl -sS -o "$tmp/health" -w '%{http_code}' "$base/healthz")" || fail "GET /healthz failed"
[ "$code" = "200" ] || fail "GET /healthz answered $code: $(cat "$tmp/health")"

now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
sale_id="smoke-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
cat >"$tmp/sale.json" <<JSON
{"id": "$sale_id", "terminal_id": "T01", "type": "sale", "created_at": "$now",
 "currency": "USD",
 "lines": [{"sku": "0001", "name": "Coffee", "qty": "2", "unit_price": "3.50",
            "discount": "0.00", "tax_rate": "0.0825"}],
 "payments": [{"method": "cash", "amount": "8.00"}], "total": "7.58"}
JSON
post() {
  curl -sS -o "$tmp/answer" -w '%{http_code}' -H "Authorization: Bearer $token" \
    -H 'Content-Type: application/json' --data-binary @"$tmp/sale.json" "$base/v1/sales"
}
code="$(post)" || fail "POST /v1/sales failed"
[ "$code" = "201" ] || fail "POST /v1/sales answered $code: $(cat "$tmp/answer")"
grep -q '"receipt_no"' "$tmp/answer" || fail "201 without receipt_no: $(cat "$tmp/answer")"
grep -q '"change":"0.42"' "$tmp/answer" || grep -q '"change": "0.42"' "$tmp/answer" ||
  fail "unexpected change in $(cat "$tmp/answer")"
code="$(post)" || fail "POST /v1/sales (retry) failed"
[ "$code" = "200" ] || fail "retrying the same sale answered $code, want 200"
echo "qemu_smoke.sh: /healthz 200, sale 201, retry 200 on port $port" >&2

# Idle: one second after the last request, read the resident set of the process.
sleep 1
rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "machub exited with status $status after SIGTERM"
echo "$rss"

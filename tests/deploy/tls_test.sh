#!/bin/sh
# HTTPS on the store LAN (issue 11, part 2), against the real binary:
#   1. `machub tls init --host localhost --ip 127.0.0.1` creates the store CA and the server
#      certificate and prints the CA's SHA-256 fingerprint (checked against openssl's);
#   2. `machub serve` with that certificate answers curl --cacert ca.pem by host name and by
#      IP address; curl without the CA refuses the hub (exit 60); a name that is not in the
#      SANs is refused too;
#   3. openssl s_client verifies the chain and the host name (Verify return code: 0);
#   4. running tls init again keeps the CA (same fingerprint) and renews the server
#      certificate; the running hub (tls_reload_s = 1) serves the new one to new
#      connections within a few seconds, without a restart, and curl --cacert still works;
#   5. tls_auto on a fresh data folder serves HTTPS at once; a restart keeps the CA.
# Usage: tests/deploy/tls_test.sh BINARY
set -eu
bin="$1"
tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
fail() {
  echo "tls_test.sh: $*" >&2
  [ -f "$tmp/hub.log" ] && tail -n 20 "$tmp/hub.log" >&2
  exit 1
}
command -v openssl >/dev/null || fail "openssl (the command) is missing"

mkdir -p "$tmp/data"
"$bin" tls init --data-dir "$tmp/data" --host localhost --host hub.store.lan --ip 127.0.0.1 \
  >"$tmp/init.out" 2>"$tmp/init.err" || fail "tls init failed: $(cat "$tmp/init.err")"
tls="$tmp/data/tls"
for f in ca.pem ca.key server.pem server.key; do [ -s "$tls/$f" ] || fail "tls init wrote no $f"; done
[ "$(stat -c %a "$tls/server.key")" = 600 ] || fail "server.key is not mode 0600"
[ "$(stat -c %a "$tls/ca.key")" = 600 ] || fail "ca.key is not mode 0600"
printed="$(awk '$1 == "ca_fingerprint_sha256" {print $2}' "$tmp/init.out")"
want="$(openssl x509 -in "$tls/ca.pem" -noout -fingerprint -sha256 | sed 's/.*=//')"
[ -n "$printed" ] && [ "$printed" = "$want" ] || fail "printed fingerprint '$printed', openssl says '$want'"
openssl x509 -in "$tls/server.pem" -noout -text >"$tmp/server.txt"
grep -q 'ASN1 OID: prime256v1' "$tmp/server.txt" || fail "server key is not ECDSA P-256"
grep -q 'DNS:localhost, DNS:hub.store.lan, IP Address:127.0.0.1' "$tmp/server.txt" ||
  fail "SANs missing: $(grep -A1 'Subject Alternative Name' "$tmp/server.txt")"
openssl verify -CAfile "$tls/ca.pem" "$tls/server.pem" >/dev/null || fail "openssl verify failed"

token="mh_tls$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
hash="$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
"$bin" serve --data-dir "$tmp/data" --listen 127.0.0.1:0 --ready-file "$tmp/ready" \
  --demo-token false --manager-tokens "T01:$hash" --tls-cert "$tls/server.pem" \
  --tls-key "$tls/server.key" --tls-reload-s 1 --log-level warn >"$tmp/hub.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$tmp/ready" ]; do
  kill -0 "$pid" 2>/dev/null || fail "machub exited before listening"
  i=$((i + 1))
  [ "$i" -le 300 ] || fail "machub did not listen within 30 s"
  sleep 0.1
done
port="$(tr -d '\n' <"$tmp/ready")"

code="$(curl -sS --cacert "$tls/ca.pem" -o /dev/null -w '%{http_code}' "https://localhost:$port/healthz")" ||
  fail "curl --cacert by name failed"
[ "$code" = 200 ] || fail "GET /healthz by name answered $code"
code="$(curl -sS --cacert "$tls/ca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$port/healthz")" ||
  fail "curl --cacert by IP failed"
[ "$code" = 200 ] || fail "GET /healthz by IP answered $code"
code="$(curl -sS --cacert "$tls/ca.pem" --resolve "hub.store.lan:$port:127.0.0.1" -o /dev/null \
  -w '%{http_code}' -H "Authorization: Bearer $token" "https://hub.store.lan:$port/v1/status")" ||
  fail "curl --cacert with the LAN name failed"
[ "$code" = 200 ] || fail "GET /v1/status over HTTPS answered $code"
rc=0
curl -sS -o /dev/null "https://127.0.0.1:$port/healthz" 2>/dev/null || rc=$?
[ "$rc" -eq 60 ] || fail "curl without the store CA exited $rc, want 60 (certificate not trusted)"
rc=0
curl -sS --cacert "$tls/ca.pem" --resolve "other.lan:$port:127.0.0.1" -o /dev/null \
  "https://other.lan:$port/healthz" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "a host name outside the SANs was accepted"

openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$tls/ca.pem" \
  -verify_return_error -verify_hostname localhost </dev/null >"$tmp/s_client.out" 2>&1 ||
  fail "openssl s_client failed: $(tail -n 5 "$tmp/s_client.out")"
grep -q 'Verify return code: 0 (ok)' "$tmp/s_client.out" || fail "s_client did not verify the hub"

# Renewal under the same CA: the fingerprint terminals pinned does not change.
old_serial="$(openssl x509 -in "$tls/server.pem" -noout -serial)"
"$bin" tls init --data-dir "$tmp/data" --host localhost --ip 127.0.0.1 >"$tmp/init2.out" 2>/dev/null ||
  fail "second tls init failed"
[ "$(awk '$1 == "ca_fingerprint_sha256" {print $2}' "$tmp/init2.out")" = "$printed" ] ||
  fail "a second tls init changed the CA"
openssl verify -CAfile "$tls/ca.pem" "$tls/server.pem" >/dev/null || fail "renewed certificate does not verify"
served_serial() {
  openssl s_client -connect "127.0.0.1:$port" -servername localhost -CAfile "$tls/ca.pem" \
    </dev/null 2>/dev/null | openssl x509 -noout -serial 2>/dev/null
}
new_serial="$(openssl x509 -in "$tls/server.pem" -noout -serial)"
[ "$new_serial" != "$old_serial" ] || fail "tls init did not issue a new server certificate"
i=0
while [ "$(served_serial)" != "$new_serial" ]; do
  i=$((i + 1))
  [ "$i" -le 50 ] || fail "the hub still serves the old certificate 10 s after renewal"
  sleep 0.2
done
kill -0 "$pid" 2>/dev/null || fail "machub died during the reload"
code="$(curl -sS --cacert "$tls/ca.pem" -o /dev/null -w '%{http_code}' "https://localhost:$port/healthz")" ||
  fail "curl --cacert after the renewal failed"
[ "$code" = 200 ] || fail "GET /healthz after the renewal answered $code"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || fail "machub exited with status $status after SIGTERM"
# tls_auto (what the Greengrass recipe sets): a fresh data folder serves HTTPS at once with
# a certificate from a new store CA; a restart keeps that CA.
mkdir -p "$tmp/auto"
start_auto() {
  rm -f "$tmp/ready"
  "$bin" serve --data-dir "$tmp/auto" --listen 127.0.0.1:0 --ready-file "$tmp/ready" \
    --demo-token false --terminal-tokens "T01:$hash" --tls-auto true \
    --tls-hosts 'localhost, 127.0.0.1' --log-level warn >"$tmp/hub.log" 2>&1 &
  pid=$!
  i=0
  while [ ! -s "$tmp/ready" ]; do
    kill -0 "$pid" 2>/dev/null || fail "machub (tls_auto) exited before listening"
    i=$((i + 1))
    [ "$i" -le 300 ] || fail "machub (tls_auto) did not listen within 30 s"
    sleep 0.1
  done
  port="$(tr -d '\n' <"$tmp/ready")"
  code="$(curl -sS --cacert "$tmp/auto/tls/ca.pem" -o /dev/null -w '%{http_code}' \
    "https://localhost:$port/healthz")" || fail "curl --cacert against tls_auto failed"
  [ "$code" = 200 ] || fail "GET /healthz (tls_auto) answered $code"
  kill -TERM "$pid"
  wait "$pid" || fail "machub (tls_auto) did not exit cleanly"
  pid=""
}
start_auto
ca_first="$(openssl x509 -in "$tmp/auto/tls/ca.pem" -noout -fingerprint -sha256)"
start_auto
[ "$(openssl x509 -in "$tmp/auto/tls/ca.pem" -noout -fingerprint -sha256)" = "$ca_first" ] ||
  fail "a restart with tls_auto replaced the store CA"

echo "tls_test.sh: tls_auto serves HTTPS on a fresh data folder and keeps its CA; tls init, curl --cacert (name, IP), s_client verify, renewal reloaded without a restart: ok"

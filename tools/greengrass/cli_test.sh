#!/bin/sh
# Both front ends of the Greengrass recipe tools on what we ship: the host tool
# machub-greengrass and `machub greengrass` (a native build links the tools into the hub).
# Each must pass the shipped recipe and updates with --strict, flag a broken recipe with
# exit 1 and a missing file with exit 2, and render the same script, configuration, modes
# and paths.
# Usage: cli_test.sh MACHUB_GREENGRASS MACHUB SOURCE_DIR
set -eu
TOOL="$1"
MACHUB="$2"
SRC="$3"
GG="$SRC/deploy/greengrass"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() {
  echo "FAIL: $*"
  failed=1
}

if ! "$TOOL" check --help >/dev/null 2>&1; then
  fail "machub-greengrass check --help"
fi
updates="$GG/config-update.json $GG/deployment.json"
for front in tool hub; do
  run() {
    if [ "$front" = tool ]; then "$TOOL" "$@"; else "$MACHUB" greengrass "$@"; fi
  }
  # shellcheck disable=SC2086
  if run check --strict "$GG/recipe.yaml" $updates >"$tmp/$front.check" 2>&1; then
    echo "PASS: $front: shipped recipe and updates pass check --strict"
  else
    cat "$tmp/$front.check"
    fail "$front: shipped recipe and updates pass check --strict"
  fi
  # A broken copy: an artifact run as a command without Execute permission.
  sed 's/Execute: OWNER/Execute: NONE/' "$GG/recipe.yaml" >"$tmp/noexec.yaml"
  rc=0
  run check "$tmp/noexec.yaml" >"$tmp/$front.noexec" 2>&1 || rc=$?
  if [ "$rc" -eq 1 ] && grep -q "error:" "$tmp/$front.noexec"; then
    echo "PASS: $front: Execute NONE is an error (exit 1)"
  else
    cat "$tmp/$front.noexec"
    fail "$front: Execute NONE is an error (exit 1, got $rc)"
  fi
  rc=0
  run check "$tmp/missing.yaml" >"$tmp/$front.missing" 2>&1 || rc=$?
  [ "$rc" -eq 2 ] && echo "PASS: $front: a missing file exits 2" ||
    fail "$front: a missing file exits 2 (got $rc)"
  for what in script config modes paths; do
    run render "$GG/recipe.yaml" --arch aarch64 --update "$GG/config-update.json" \
      --what "$what" >"$tmp/$front.$what" 2>&1 || fail "$front: render --what $what"
  done
done
for what in script config modes paths; do
  if [ -s "$tmp/tool.$what" ] && cmp -s "$tmp/tool.$what" "$tmp/hub.$what"; then
    echo "PASS: render --what $what: same output from both"
  else
    diff "$tmp/tool.$what" "$tmp/hub.$what" || true
    fail "render --what $what: same output from both"
  fi
done
exit "$failed"

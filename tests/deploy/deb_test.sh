#!/bin/sh
# Builds the machub .deb of a (native) build folder with CPack, extracts it into a scratch
# root with `dpkg -x` (nothing is installed on this machine) and checks it:
#   control: Package/Architecture, Depends computed (libc6, libsqlite3-0, libssl3) plus
#            adduser, conffiles = /etc/machub/machub.toml, maintainer scripts valid sh
#   files:   /usr/bin/machub runs `--version` from the scratch root; the unit has the
#            hardening keys; machub.toml parses with `machub config show --config`
#   the explicit Depends of cross builds names every library the native one computes
# Usage: tests/deploy/deb_test.sh BUILD_DIR SOURCE_DIR
set -eu
build="$1"
src="$2"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT INT TERM
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

version="$(sed -n 's/^project(machub VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")"
(cd "$build" && cpack -G DEB -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) || {
  cat "$tmp/cpack.log"
  echo "FAIL: cpack"
  exit 1
}
deb="$(ls "$tmp"/pkg/machub_*.deb | head -n 1)"
echo "package: $(basename "$deb"), $(stat -c %s "$deb") bytes"
arch="$(dpkg --print-architecture)"
[ "$(basename "$deb")" = "machub_${version}_${arch}.deb" ] && ok "file name machub_${version}_${arch}.deb" ||
  bad "file name $(basename "$deb")"

dpkg-deb -f "$deb" >"$tmp/control"
cat "$tmp/control"
grep -qx "Package: machub" "$tmp/control" && ok "Package: machub" || bad "Package field"
grep -qx "Architecture: $arch" "$tmp/control" && ok "Architecture: $arch" || bad "Architecture field"
depends="$(sed -n 's/^Depends: //p' "$tmp/control")"
for lib in libc6 libstdc++6 libsqlite3-0 libssl3 adduser; do
  case ", $depends," in
    *", $lib "* | *", $lib,"*) ok "Depends names $lib" ;;
    *) bad "Depends lacks $lib: $depends" ;;
  esac
done
# Every package the computed list names is in the explicit cross list too.
cross="$(sed -n 's/^ *"\(libc6 (.*\)"$/\1/p' "$src/cmake/packaging.cmake")"
for name in $(printf '%s\n' "$depends" | tr ',' '\n' | sed 's/^ *\([^ ]*\).*/\1/'); do
  case ", $cross," in
    *", $name "* | *", $name,"* | "$name "*) ok "cross Depends has $name" ;;
    *) bad "MACHUB_DEB_CROSS_DEPENDS lacks $name (native computes it): $cross" ;;
  esac
done

mkdir -p "$tmp/control.d"
dpkg-deb -e "$deb" "$tmp/control.d"
[ "$(cat "$tmp/control.d/conffiles")" = "/etc/machub/machub.toml" ] && ok "conffiles: /etc/machub/machub.toml" ||
  bad "conffiles: $(cat "$tmp/control.d/conffiles" 2>/dev/null)"
for s in postinst prerm postrm; do
  if [ -x "$tmp/control.d/$s" ] && sh -n "$tmp/control.d/$s"; then ok "$s is an executable sh script"; else bad "$s"; fi
done
grep -q "adduser --system" "$tmp/control.d/postinst" && ok "postinst creates the machub system user" ||
  bad "postinst does not create the user"

root="$tmp/root"
dpkg -x "$deb" "$root"
for f in usr/bin/machub lib/systemd/system/machub.service etc/machub/machub.toml \
  usr/share/doc/machub/README.md usr/share/doc/machub/DEPLOY_GREENGRASS.md usr/share/doc/machub/copyright; do
  [ -f "$root/$f" ] && ok "installs /$f" || bad "missing /$f"
done
extra="$(cd "$root" && find . -type f | sed 's|^\./||' | grep -v -e '^usr/bin/machub$' \
  -e '^lib/systemd/system/machub.service$' -e '^etc/machub/machub.toml$' -e '^usr/share/doc/machub/' || true)"
[ -z "$extra" ] && ok "nothing else installed" || bad "unexpected files: $extra"

v="$("$root/usr/bin/machub" --version)" && [ "$v" = "machub $version" ] && ok "machub --version from the package: $v" ||
  bad "machub --version: $v"
file "$root/usr/bin/machub" | grep -q "stripped" && ! file "$root/usr/bin/machub" | grep -q "not stripped" &&
  ok "binary is stripped ($(stat -c %s "$root/usr/bin/machub") bytes)" || bad "binary not stripped"

unit="$root/lib/systemd/system/machub.service"
for key in "User=machub" "ExecStart=/usr/bin/machub serve --config /etc/machub/machub.toml" \
  "Restart=on-failure" "StateDirectory=machub" "ProtectSystem=strict" "ProtectHome=yes" \
  "NoNewPrivileges=yes" "PrivateTmp=yes" "MemoryMax=128M" "LimitNOFILE=8192"; do
  grep -qx "$key" "$unit" && ok "unit: $key" || bad "unit lacks $key"
done
if command -v systemd-analyze >/dev/null 2>&1; then
  # systemd's own parser, on a copy whose ExecStart points at the extracted binary (verify
  # checks that the program exists). Any output is a problem.
  sed "s|/usr/bin/machub|$root/usr/bin/machub|" "$unit" >"$tmp/machub.service"
  if systemd-analyze verify "$tmp/machub.service" >"$tmp/verify" 2>&1 && [ ! -s "$tmp/verify" ]; then
    ok "systemd-analyze verify: no complaint"
  else
    bad "systemd-analyze verify: $(cat "$tmp/verify")"
  fi
fi

if "$root/usr/bin/machub" config show --config "$root/etc/machub/machub.toml" >"$tmp/show" 2>&1; then
  grep -q '^data_dir = "/var/lib/machub"' "$tmp/show" && grep -q '^demo_token = false' "$tmp/show" &&
    ok "machub.toml parses (data_dir /var/lib/machub, demo_token false)" || { bad "config show:"; cat "$tmp/show"; }
else
  bad "machub config show --config machub.toml failed: $(cat "$tmp/show")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

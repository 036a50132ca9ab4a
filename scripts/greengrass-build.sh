#!/bin/sh
# Builds the Greengrass component layout that GDK's custom build and greengrass-cli expect:
#   <out>/recipes/com.machub.StoreHub-<version>.yaml   recipe, artifact URIs filled in
#   <out>/artifacts/com.machub.StoreHub/<version>/machub
#       the binary for the device this layout is meant for (--arch), for
#       greengrass-cli deployment create --recipeDir <out>/recipes --artifactDir <out>/artifacts
#   <out>/s3/<prefix>com.machub.StoreHub/<version>/linux-<arch>/machub
#       one binary per architecture built, laid out as the recipe's URIs name them:
#       aws s3 cp --recursive <out>/s3 s3://<bucket>/
#
# Usage: scripts/greengrass-build.sh [--bucket NAME] [--prefix P] [--version V] [--arch A]
#                                    [--out DIR] [--no-build]
#   --bucket   S3 bucket for the artifact URIs (default: $MACHUB_GG_BUCKET or BUCKET,
#              a placeholder that only local deployments accept)
#   --prefix   key prefix before the component name, e.g. "components/" (default none)
#   --version  component version (default: the recipe's ComponentVersion)
#   --arch     aarch64, arm or amd64: whose binary goes into artifacts/ (default: the
#              first one available, amd64 preferred on an amd64 host)
#   --out      output folder (default greengrass-build)
#   --no-build do not build the host (amd64) binary; use what MACHUB_GG_ARCHES names
# Binaries: amd64 is built here with the release preset unless --no-build; others are taken
# from MACHUB_GG_ARCHES="aarch64=PATH arm=PATH" or from the cross build folders
# (build/arm64-cross, build/armhf-cross: scripts/build-aarch64.sh [--arch armhf]).
# Binaries are stripped copies; the recipe is checked with the host tool
# `machub-greengrass check` (or `machub greengrass check` in a native build).
set -eu
cd "$(dirname "$0")/.."

component="com.machub.StoreHub"
bucket="${MACHUB_GG_BUCKET:-BUCKET}"
prefix=""
version=""
want_arch=""
out="greengrass-build"
build_host=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bucket) bucket="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --arch) want_arch="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-build) build_host=0; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "greengrass-build.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
case "$bucket" in
  *[!a-zA-Z0-9.-]*|"") echo "greengrass-build.sh: bad bucket name '$bucket'" >&2; exit 2 ;;
esac
case "$prefix" in
  ""|*/) ;;
  *) prefix="$prefix/" ;;
esac

recipe_src="deploy/greengrass/recipe.yaml"
src_version="$(sed -n "s/^ComponentVersion: '\(.*\)'\$/\1/p" "$recipe_src")"
[ -n "$src_version" ] || { echo "greengrass-build.sh: no ComponentVersion in $recipe_src" >&2; exit 1; }
[ -n "$version" ] || version="$src_version"

# Collect binaries: "arch=path" words.
arches="${MACHUB_GG_ARCHES:-}"
if [ -z "$arches" ]; then
  if [ "$build_host" -eq 1 ] && [ "$(uname -m)" = "x86_64" ]; then
    sh scripts/install-deps.sh
    cmake --preset release >/dev/null
    cmake --build --preset release -j2 --target machub >&2
  fi
  [ -x build/release/src/app/machub ] && arches="amd64=build/release/src/app/machub"
  [ -x build/arm64-cross/src/app/machub ] && arches="$arches aarch64=build/arm64-cross/src/app/machub"
  [ -x build/armhf-cross/src/app/machub ] && arches="$arches arm=build/armhf-cross/src/app/machub"
fi
[ -n "$arches" ] || { echo "greengrass-build.sh: no binary found (build one first)" >&2; exit 1; }

strip_for() {
  case "$1" in
    aarch64) echo aarch64-linux-gnu-strip ;;
    arm) echo arm-linux-gnueabihf-strip ;;
    *) echo strip ;;
  esac
}

rm -rf "$out"
mkdir -p "$out/recipes" "$out/artifacts/$component/$version"
first=""
for item in $arches; do
  arch="${item%%=*}"
  bin="${item#*=}"
  case "$arch" in aarch64|arm|amd64) ;; *) echo "greengrass-build.sh: unknown arch $arch" >&2; exit 2 ;; esac
  [ -f "$bin" ] || { echo "greengrass-build.sh: $bin missing" >&2; exit 1; }
  dest="$out/s3/$prefix$component/$version/linux-$arch"
  mkdir -p "$dest"
  "$(strip_for "$arch")" -o "$dest/machub" "$bin"
  chmod 0755 "$dest/machub"
  [ -n "$first" ] || first="$arch"
  if [ -z "$want_arch" ] && [ "$arch" = "amd64" ]; then first="amd64"; fi
done
[ -n "$want_arch" ] || want_arch="$first"
[ -f "$out/s3/$prefix$component/$version/linux-$want_arch/machub" ] || {
  echo "greengrass-build.sh: no $want_arch binary (have: $arches)" >&2
  exit 1
}
cp "$out/s3/$prefix$component/$version/linux-$want_arch/machub" \
  "$out/artifacts/$component/$version/machub"

# The recipe: version and URIs. Only these two kinds of line change.
recipe="$out/recipes/$component-$version.yaml"
sed -e "s|^ComponentVersion: '.*'\$|ComponentVersion: '$version'|" \
    -e "s|s3://BUCKET/$component/$src_version/|s3://$bucket/$prefix$component/$version/|" \
    "$recipe_src" >"$recipe"

# Check what we produced with the recipe tools: the host tool machub-greengrass
# (tools/greengrass; on PATH or in a build folder), else a machub that runs here and has
# `machub greengrass` (native builds; the device build leaves it out).
checker=""
for c in "$(command -v machub-greengrass || true)" build/release/tools/greengrass/machub-greengrass \
    build/dev/tools/greengrass/machub-greengrass; do
  if [ -n "$c" ] && [ -x "$c" ] && "$c" --version >/dev/null 2>&1; then checker="$c"; break; fi
done
if [ -z "$checker" ]; then
  for c in "$out/artifacts/$component/$version/machub" build/release/src/app/machub \
      build/dev/src/app/machub; do
    if [ -x "$c" ] && "$c" greengrass check --help >/dev/null 2>&1; then
      checker="$c greengrass"
      break
    fi
  done
fi
if [ -n "$checker" ]; then
  # shellcheck disable=SC2086  # "$c greengrass": a command and its first argument
  $checker check --strict "$recipe" >&2
else
  echo "greengrass-build.sh: no machub-greengrass (or machub with the recipe tools) here to check the recipe (skipped)" >&2
fi
echo "$recipe"
find "$out" -type f -name machub | sort

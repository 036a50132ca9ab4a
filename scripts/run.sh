#!/bin/sh
# Installs what is missing, builds a release binary and starts the hub on its embedded
# defaults: SQLite journal in ./machub-data, listening on 127.0.0.1:8080. On the first
# start it prints a demo terminal token (T01) and a curl command to record a sale.
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
exec ./build/release/src/app/machub serve "$@"

#!/usr/bin/env bash
# Prepares whatever is missing (Debian packages for the decoders; runtime library and models from
# their registries, cached and checked by sha256; a release build) and starts the server on
# 127.0.0.1 with its embedded SQLite database in ./data. It prints the address and the first account's SecretId/SecretKey.
# Extra arguments go to `ims serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
# Downloads are cached per user, outside the clone, so every clone on the machine shares them.
export IMS_CACHE_DIR="${IMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ims}"
scripts/system-deps.sh
echo "== fetching runtime and models into $IMS_CACHE_DIR"
python3 scripts/fetch.py
echo "== building ims (release)"
cargo build --release --locked -p ims
export IMS_INFERENCE__ARTIFACTS_DIR="${IMS_INFERENCE__ARTIFACTS_DIR:-$IMS_CACHE_DIR/artifacts}"
exec target/release/ims serve "$@"

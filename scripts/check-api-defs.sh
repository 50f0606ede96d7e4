#!/usr/bin/env bash
# Verifies that the vendored API definitions are byte-identical to the pinned tccli package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" tccli==3.1.189.1
python3 - "$tmp" "$root/crates/protocol/api" <<'PY'
import glob, sys, zipfile
wheel = zipfile.ZipFile(glob.glob(sys.argv[1] + "/tccli-*.whl")[0])
bad = 0
for service, version in (("ims", "v20201229"), ("ims", "v20200713"), ("tiia", "v20190529")):
    for name in ("api.json", "examples.json"):
        ours = open(f"{sys.argv[2]}/{service}/{version}/{name}", "rb").read()
        theirs = wheel.read(f"tccli/services/{service}/{version}/{name}")
        status = "ok" if ours == theirs else "DIFFERS"
        bad += ours != theirs
        print(f"{service}/{version}/{name}: {status}")
sys.exit(1 if bad else 0)
PY

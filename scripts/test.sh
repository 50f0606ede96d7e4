#!/usr/bin/env bash
# Runs every test of the project: formatting and lints (rustfmt, clippy with warnings as errors),
# the unit tests of each crate and the integration tests that start the real server and drive it
# with the real Python and Node SDKs. It first installs what the build and tests need: Debian
# packages (scripts/system-deps.sh; PostgreSQL 15 among them, whose servers the tests start and
# stop in temporary folders), the artifacts (scripts/fetch.py), the Python SDK and tccli
# into virtualenvs in the cache, the Node SDK with npm.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
# Downloads are cached per user, outside the clone, so every clone on the machine shares them.
export IMS_CACHE_DIR="${IMS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ims}"

scripts/system-deps.sh
echo "== fetching runtime and models into $IMS_CACHE_DIR"
# NudeNet (AGPL) and FaceRes (licence not established), opt-in for the server, are fetched for
# the tests, which check them too.
python3 scripts/fetch.py --with nudenet,faceres

# A virtualenv per requirements file, reinstalled only when the file changes.
venv_for() {
    local venv="$IMS_CACHE_DIR/$1" requirements="$2" want
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    want=$(sha256sum "$requirements" | cut -d' ' -f1)
    if [ "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" >&2
        echo "$want" > "$venv/.requirements.sha256"
    fi
    echo "$venv/bin/python"
}
echo "== Python SDK and the models' reference packages"
IMS_TEST_PYTHON=$(venv_for venv tests/sdk/python/requirements.txt)
IMS_REFERENCE_PYTHON=$(venv_for reference-venv tests/reference/python/requirements.txt)
# tccli brings the whole Python SDK of every service (about 650 MB): a virtualenv of its own.
IMS_TEST_TCCLI=$(dirname "$(venv_for tccli-venv tests/sdk/tccli/requirements.txt)")/tccli
export IMS_TEST_PYTHON IMS_REFERENCE_PYTHON IMS_TEST_TCCLI

echo "== Node SDK and reference packages"
for lock in tests/sdk/node/package-lock.json tests/reference/*/package-lock.json; do
    (cd "$(dirname "$lock")" && npm ci --no-audit --no-fund --loglevel=error)
done

echo "== formatting and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked "$@"
echo "== all tests passed in $(( $(date +%s) - started )) s"

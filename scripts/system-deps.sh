#!/usr/bin/env bash
# Installs the Debian packages the build and the tests need, when they are missing: the AVIF
# and HEIF decoders (libavif-dev, libheif-dev), pkg-config to find them, nasm for
# libjpeg-turbo's SIMD code, PostgreSQL 15's server binaries (postgresql-15), which the
# tests run in temporary folders of their own, and for the console's browser tests Chromium,
# its WebDriver (chromium-driver) and a CJK font (fonts-wqy-microhei, 4 MB) so Chinese pages
# render. Uses sudo when not run as root.
set -euo pipefail
packages=(pkg-config nasm libavif-dev libheif-dev libraw-dev postgresql-15 chromium chromium-driver fonts-wqy-microhei)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# The package would create and start a system-wide cluster on port 5432: the tests need only
# the binaries (crates/store/src/testing.rs), so no cluster is made.
if [[ " ${missing[*]} " == *" postgresql-15 "* ]]; then
    $sudo mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | $sudo tee /etc/postgresql-common/createcluster.d/ims-no-main-cluster.conf >/dev/null
fi
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; }

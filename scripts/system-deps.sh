#!/usr/bin/env bash
# Installs the Debian packages the build needs, when they are missing: the AVIF and HEIF
# decoders (libavif-dev, libheif-dev), pkg-config to find them, and nasm for libjpeg-turbo's
# SIMD code. Uses sudo when not run as root.
set -euo pipefail
packages=(pkg-config nasm libavif-dev libheif-dev libraw-dev)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "== installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"; }

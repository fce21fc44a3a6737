#!/usr/bin/env bash
# Installs the Debian packages Fluid Server needs (only those missing) and builds it into build/.
#   scripts/setup.sh            install dependencies, then build
#   scripts/setup.sh --deps     install dependencies only
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
    build-essential cmake pkg-config clang libclang-rt-14-dev
    libmicrohttpd-dev libjansson-dev libcurl4-openssl-dev libpcre2-dev libutf8proc-dev libfftw3-dev
    libavformat-dev libavcodec-dev libswresample-dev libavutil-dev libssl-dev libcmocka-dev
    zlib1g-dev python3-numpy ffmpeg sox curl nodejs valgrind
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Some Node.js builds bundle npm; Debian's own nodejs needs the separate npm package.
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -f tests/node/package.json ] && [ ! -d tests/node/node_modules ]; then
    (cd tests/node && npm install --no-audit --no-fund --silent)
fi

[ "${1:-}" = "--deps" ] && exit 0

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)"

#!/usr/bin/env bash
# Runs every test twice: in an optimised build (build/) and under AddressSanitizer +
# UndefinedBehaviorSanitizer (build-asan/). Installs missing dependencies first.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --deps

jobs=$(nproc)
status=0
run_suite() {
    local dir=$1; shift
    cmake -S . -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
    echo "== ctest in $dir"
    (cd "$dir" && ctest --output-on-failure --timeout 900 -j "$jobs") || status=1
}
run_suite build -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DFLUID_SANITIZE=ON
exit $status

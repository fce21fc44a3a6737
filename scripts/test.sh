#!/usr/bin/env bash
# Runs every test twice: in an optimised build (build/) and under AddressSanitizer +
# UndefinedBehaviorSanitizer (build-asan/), then each libFuzzer target briefly (build-fuzz/).
# Installs missing dependencies first.
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
# Every fuzz target for a bounded time (about 4 min in all on 2 cores, its clang build included);
# `scripts/fuzz.sh 3600` is the long run.
echo "== fuzz"
scripts/fuzz.sh "${FLUID_FUZZ_SECONDS:-30}" || status=1
exit $status

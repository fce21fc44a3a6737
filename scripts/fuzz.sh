#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (build-fuzz/) and runs each for SECONDS
# (default 60), two at a time. Fails on any crash, leak, timeout or out-of-memory, and leaves the
# input that caused it in build-fuzz/artifacts/<target>/ (copy it to
# tests/fuzz/regressions/<target>/ once fixed: ctest replays it from then on).
#   scripts/fuzz.sh            60 s per target (CI calls it with fewer)
#   scripts/fuzz.sh 3600       the long run
#   scripts/fuzz.sh 60 gguf    only the targets named
# New inputs the fuzzers find are kept in build-fuzz/corpus/<target>/ (not in the repo) and
# reused by the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
jobs=${FUZZ_JOBS:-2}
dir=build-fuzz

# -max_len per target: a little above its largest seed.
declare -A MAX_LEN=([api_json]=4096 [multipart]=16384 [gguf]=65536 [whisper_model]=16384
                    [audio_decode]=16384 [tokenizer]=2048 [chat_template]=4096)

CC=clang cmake -S . -B "$dir" -DFLUID_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j "$jobs" --target fuzz >/dev/null

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for src in tests/fuzz/fuzz_*.c; do
        name=$(basename "$src" .c)
        targets+=("${name#fuzz_}")
    done
fi

# testdata (when present) adds the real vocabularies to the tokenizer targets
if [ -z "${FLUID_TESTDATA:-}" ] && [ -d ../shared/testdata ]; then
    export FLUID_TESTDATA=$(cd ../shared/testdata && pwd)
fi

# One target: $1 name, $2 -max_len; FUZZ_SECONDS and FUZZ_DIR from the environment.
run_one() {
    local t=$1 max_len=$2 dir=$FUZZ_DIR
    local work=$dir/corpus/$t artifacts=$dir/artifacts/$t/ log=$dir/logs/$t.log
    mkdir -p "$work" "$artifacts" "$dir/logs"
    local corpora=("$work" "tests/fuzz/corpus/$t")
    [ -d "tests/fuzz/regressions/$t" ] && corpora+=("tests/fuzz/regressions/$t")
    if "$dir/fuzz_$t" -max_total_time="$FUZZ_SECONDS" -max_len="$max_len" -timeout=30 \
        -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$artifacts" \
        "${corpora[@]}" >"$log" 2>&1; then
        echo "fuzz: $t ok"
    else
        echo "fuzz: $t FAILED (log $log, input in $artifacts):"
        grep -E "ERROR|SUMMARY|Test unit written|property violated" "$log" | head -n 8
        return 1
    fi
}
export -f run_one
export FUZZ_SECONDS=$seconds FUZZ_DIR=$dir

echo "fuzz: ${#targets[@]} targets x ${seconds} s, $jobs at a time"
status=0
for t in "${targets[@]}"; do echo "$t ${MAX_LEN[$t]:-4096}"; done |
    xargs -P "$jobs" -L 1 bash -c 'run_one "$1" "$2"' _ || status=1

# What each run did: executions, speed, inputs in its corpus.
printf '%-16s %12s %10s %8s\n' target execs exec/s corpus
for t in "${targets[@]}"; do
    log=$dir/logs/$t.log
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    corpus=$(find "$dir/corpus/$t" tests/fuzz/corpus/"$t" -type f | wc -l)
    printf '%-16s %12s %10s %8s\n' "$t" "${execs:-?}" "${speed:-?}" "$corpus"
done
exit $status

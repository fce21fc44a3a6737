#!/usr/bin/env bash
# Language-model speed against the memory-bandwidth bound, unattended:
#
#   scripts/bench.sh MODEL_DIR [BUILD_DIR]
#
# Writes the six synthetic real-shape models into MODEL_DIR when they are missing
# (fluid-synth with the real vocabularies of $FLUID_TESTDATA, default ../shared/testdata),
# measures the memory read bandwidth with 1 and 2 threads (fluid-bench --membw), runs
# `fluid-bench -t 1,2 -p 512 -n 128 -r 3` on each model and prints one markdown table:
# generation bound = bandwidth / bytes read per generated token (all weights + the average
# KV cache read over the generated tokens). BENCH_PROMPT, BENCH_GEN and BENCH_REPS override
# -p, -n and -r (e.g. for a quick check). Run it on an otherwise idle machine.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
models=${1:?usage: scripts/bench.sh MODEL_DIR [BUILD_DIR]}
build=${2:-$here/build}
testdata=${FLUID_TESTDATA:-$here/../shared/testdata}
prompt=${BENCH_PROMPT:-512}
gen=${BENCH_GEN:-128}
reps=${BENCH_REPS:-3}
python=/usr/bin/python3
[ -x "$python" ] || python=python3

for tool in fluid-bench fluid-synth; do
    if [ ! -x "$build/$tool" ]; then
        echo "bench.sh: $build/$tool is missing (build first: cmake --build $build)" >&2
        exit 1
    fi
done
mkdir -p "$models"

# name  arch  preset  vocabulary  type
specs="qwen05 qwen2 qwen2.5-0.5b ggml-vocab-qwen2.gguf
llama1b llama llama-3.2-1b ggml-vocab-llama-bpe.gguf"
types="q8_0 q4_0 q4_k_m"

while read -r name arch preset vocab; do
    for type in $types; do
        out="$models/$name-$type.gguf"
        [ -f "$out" ] && continue
        if [ ! -f "$testdata/$vocab" ]; then
            echo "bench.sh: $testdata/$vocab is missing (set FLUID_TESTDATA)" >&2
            exit 1
        fi
        echo "writing $out" >&2
        "$build/fluid-synth" --arch "$arch" --preset "$preset" --vocab "$testdata/$vocab" \
            --type "$type" -o "$out" >&2
    done
done <<<"$specs"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "load before: $(uptime)" >&2
"$build/fluid-bench" --membw -t 2 -r 10 >"$work/membw.md"
for name in qwen05 llama1b; do
    for type in $types; do
        echo "running $name-$type" >&2
        "$build/fluid-bench" -m "$models/$name-$type.gguf" -t 1,2 -p "$prompt" -n "$gen" \
            -r "$reps" --json >"$work/$name-$type.json"
    done
done
echo "load after: $(uptime)" >&2

"$python" - "$work" "$types" <<'EOF'
import json, os, re, sys

work, types = sys.argv[1], sys.argv[2].split()
bandwidth = {}  # threads -> best GB/s
for line in open(os.path.join(work, "membw.md")):
    m = re.match(r"\|\s*(\d+)\s*\|\s*([\d.]+)\s*\|", line)
    if m:
        bandwidth[int(m.group(1))] = float(m.group(2)) * 1e9
print("memory read bandwidth (fluid-bench --membw, best of 10 passes): " +
      ", ".join(f"{bandwidth[t] / 1e9:.1f} GB/s with {t} thread{'s' if t > 1 else ''}"
                for t in sorted(bandwidth)))
print()
print("| model | type | threads | pp t/s | tg t/s | bytes per token | bound t/s | % of bound |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, label in (("qwen05", "Qwen2.5-0.5B"), ("llama1b", "Llama-3.2-1B")):
    for t in types:
        rows = json.load(open(os.path.join(work, f"{name}-{t}.json")))
        for threads in sorted({r["n_threads"] for r in rows}):
            pp = [r for r in rows if r["n_threads"] == threads and r["n_gen"] == 0]
            tg = [r for r in rows if r["n_threads"] == threads and r["n_gen"] > 0]
            pp_s = f"{pp[0]['avg_ts']:.1f} ± {pp[0]['stddev_ts']:.1f}" if pp else "-"
            if not tg:
                print(f"| {label} | {t.upper()} | {threads} | {pp_s} | - | - | - | - |")
                continue
            g = tg[0]
            per_token = g["weight_bytes_per_token"] + \
                g.get("kv_bytes_per_position", 0) * (g["n_gen"] - 1) / 2
            bound = bandwidth.get(threads, 0) / per_token
            frac = f"{100 * g['avg_ts'] / bound:.0f}%" if bound else "-"
            print(f"| {label} | {t.upper()} | {threads} | {pp_s} | "
                  f"{g['avg_ts']:.1f} ± {g['stddev_ts']:.1f} | {per_token / 1e6:.1f} MB | "
                  f"{bound:.1f} | {frac} |")
EOF

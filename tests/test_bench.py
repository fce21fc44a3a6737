"""fluid-bench's output contract: llama-bench style rows and JSON field names.

A tiny random model (numpy reference writer) is benchmarked with two thread counts, a 16-token
prompt test and an 8-token generation test, 2 repetitions: the JSON must be an array of four
objects carrying llama-bench's fields with consistent values, and the text mode one table row
per test. --membw must print one row per thread count. Speed itself is not checked here.
"""

import json
import os
import subprocess
import sys
import tempfile

try:
    import numpy  # noqa: F401 (needed by the model writer)
except ImportError:
    print("SKIP: numpy is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llm as ref  # noqa: E402

FIELDS = ["model_type", "model_size", "model_n_params", "n_threads", "n_prompt", "n_gen",
          "avg_ts", "stddev_ts", "avg_ns", "stddev_ns", "samples_ts", "samples_ns", "test",
          "backends", "model_filename", "test_time", "n_batch", "type_k", "type_v"]


def run(cmd):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def main():
    build = os.environ.get("FLUID_BUILD_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build")
    bench = os.path.join(build, "fluid-bench")
    if not os.path.exists(bench):
        print("SKIP: fluid-bench not built")
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "tiny.gguf")
        ref.write_tiny_model(model, "qwen2", wtype="f16")
        args = [bench, "-m", model, "-t", "1,2", "-p", "16", "-n", "8", "-r", "2"]
        rows = json.loads(run(args + ["--json"]))
        if len(rows) != 4:
            failures.append(f"{len(rows)} JSON objects, want 4")
        want = [(1, "pp16", 16, 0), (1, "tg8", 0, 8), (2, "pp16", 16, 0), (2, "tg8", 0, 8)]
        for row, (threads, test, n_prompt, n_gen) in zip(rows, want):
            missing = [f for f in FIELDS if f not in row]
            if missing:
                failures.append(f"{test}: missing fields {missing}")
                continue
            got = (row["n_threads"], row["test"], row["n_prompt"], row["n_gen"])
            if got != (threads, test, n_prompt, n_gen):
                failures.append(f"row {got}, want {(threads, test, n_prompt, n_gen)}")
            if not (row["avg_ts"] > 0 and row["stddev_ts"] >= 0 and len(row["samples_ts"]) == 2):
                failures.append(f"{test}: bad figures {row['avg_ts']} {row['samples_ts']}")
            mean = sum(row["samples_ts"]) / 2
            if abs(mean - row["avg_ts"]) > 1e-3 * mean:
                failures.append(f"{test}: avg_ts {row['avg_ts']} is not the mean of the samples")
            if not 0 < row["model_size"] <= os.path.getsize(model):
                failures.append(f"model_size {row['model_size']}")
            if not row["model_type"].startswith("qwen2 ") or row["model_n_params"] <= 0:
                failures.append(f"model_type/params: {row['model_type']} {row['model_n_params']}")
        table = [l for l in run(args).splitlines() if l.startswith("| qwen2")]
        if len(table) != 4 or "pp16" not in table[0] or "tg8" not in table[3]:
            failures.append(f"text table: {table}")
        membw = run([bench, "--membw", "-t", "2", "--size", "64", "-r", "2"])
        if len([l for l in membw.splitlines() if l.startswith("| 1 |") or l.startswith("| 2 |")]) != 2:
            failures.append(f"--membw output: {membw}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

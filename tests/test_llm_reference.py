"""The engine's logits agree with the independent numpy reference (tests/reference_llm.py).

For tiny models of every architecture and weight type (written by the reference's own GGUF
writer, and by fluid-synth when it is built), a 32-token prompt is evaluated by fluid-logits in
one batch, token by token and in uneven chunks; at every position the relative error
max|engine - ref| / max|ref| must be <= 1e-4. Greedy generation of 32 tokens (engine: one token
per decode through the KV cache) must match the reference exactly.
"""

import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
except ImportError:
    print("SKIP: numpy is not installed")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llm as ref  # noqa: E402

TOLERANCE = 1e-4
PROMPT_LEN = 32
N_GENERATE = 32

# (label, arch, keyword arguments of write_tiny_model)
WRITTEN_MODELS = [
    ("llama f32 tied", "llama", dict(wtype="f32")),
    ("llama f16", "llama", dict(wtype="f16", tied=False)),
    ("llama bf16 rope_freqs theta=5e5", "llama",
     dict(wtype="bf16", rope_freqs=True, theta=5e5, tied=False)),
    ("llama f32 linear rope x4, f16 norms", "llama",
     dict(wtype="f32", rope_linear_factor=4.0, norm_type="f16", tied=False)),
    ("llama f16 partial rotary n_rot=8, MHA", "llama",
     dict(wtype="f16", n_rot=8, n_head_kv=4, tied=False)),
    ("qwen2 f32 tied", "qwen2", dict(wtype="f32")),
    ("qwen2 bf16", "qwen2", dict(wtype="bf16", tied=False)),
    ("qwen3 f32 head_dim=32", "qwen3", dict(wtype="f32", head_dim=32, tied=False)),
    ("qwen3 f16 head_dim=32 rope_freqs tied", "qwen3",
     dict(wtype="f16", head_dim=32, rope_freqs=True)),
    ("phi3 f32 tied", "phi3", dict(wtype="f32")),
    ("phi3 bf16", "phi3", dict(wtype="bf16", tied=False)),
]

# fluid-synth: (arch, preset, type, std, extra options)
SYNTH_MODELS = [
    ("llama", "tiny", "f32", 0.1, []),
    ("qwen2", "tiny", "f16", 0.1, []),
    ("qwen3", "tiny", "bf16", 0.1, []),
    ("phi3", "tiny", "f32", 0.1, []),
]
# The real models' widths, heads, RoPE and norms with one layer; not under the sanitizers,
# where they would take minutes.
REAL_WIDTH_MODELS = [
    ("qwen2", "qwen2.5-0.5b", "f16", 0.05, ["--layers", "1"]),
    ("qwen3", "qwen3-0.6b", "bf16", 0.05, ["--layers", "1"]),
]

# (label, fluid-logits options, extra environment): how the prompt reaches the engine
FEEDS = [
    ("one batch", ["--chunk", "0"], {}),
    ("token by token", ["--chunk", "1"], {}),
    ("chunks of 7, batches of 5", ["--chunk", "7", "--max-batch", "5"], {}),
    ("one batch, scalar kernels", ["--chunk", "0"], {"FLUID_SIMD": "off"}),
]
SANITIZED = os.environ.get("FLUID_SANITIZE") == "1"
if SANITIZED:  # the kernels are the same code there; keep the slow build's run short
    FEEDS = [f for f in FEEDS if "FLUID_SIMD" not in f[2]]


def build_dir():
    d = os.environ.get("FLUID_BUILD_DIR")
    if not d:
        d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build")
    return d


def run_engine(tool, model_path, prompt, out_path, extra, env, n_generate):
    cmd = [tool, "-m", model_path, "-o", out_path, "-t", "2", "--generate", str(n_generate)]
    cmd += extra + [str(t) for t in prompt]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, **env))
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    generated = [int(t) for t in res.stdout.split()]
    logits = np.fromfile(out_path, dtype=np.float32)
    return logits.reshape(len(prompt), -1), generated


def worst_relative_error(engine, reference):
    errs = np.abs(engine - reference).max(axis=1) / np.abs(reference).max(axis=1)
    return float(errs.max())


def reference_run(model, prompt, generated):
    """Reference logits of the prompt, and the greedy choice after each generated token's
    prefix. One pass over prompt + generated suffices: a sequence is the greedy continuation
    exactly when each of its tokens is the argmax after the tokens before it."""
    logits = model.logits(prompt + generated[:-1])
    choices = [int(np.argmax(row)) for row in logits[len(prompt) - 1:]]
    return logits[:len(prompt)], choices


def check_model(label, tool, model_path, seed, tmp, failures, summary):
    model = ref.Model(model_path)
    rng = np.random.default_rng(seed)
    prompt = [int(t) for t in rng.integers(0, model.n_vocab, size=PROMPT_LEN)]
    out_path = os.path.join(tmp, "logits.f32")
    worst, runs = 0.0, {}
    for feed, extra, env in FEEDS:
        logits, generated = run_engine(tool, model_path, prompt, out_path, extra, env, N_GENERATE)
        if len(generated) != N_GENERATE:
            failures.append(f"{label} ({feed}): {len(generated)} tokens generated")
            continue
        if tuple(generated) not in runs:
            runs[tuple(generated)] = reference_run(model, prompt, generated)
        expected, choices = runs[tuple(generated)]
        if logits.shape != expected.shape:
            failures.append(f"{label} ({feed}): logits shape {logits.shape}, expected {expected.shape}")
            continue
        err = worst_relative_error(logits, expected)
        worst = max(worst, err)
        if not err <= TOLERANCE:
            failures.append(f"{label} ({feed}): relative error {err:.3g} > {TOLERANCE}")
        if generated != choices:
            step = next(i for i in range(N_GENERATE) if generated[i] != choices[i])
            failures.append(f"{label} ({feed}): greedy generation differs at step {step}:\n"
                            f"  engine    {generated}\n  reference {choices}")
    distinct = len(set(next(iter(runs)))) if runs else 0
    summary.append((label, worst, PROMPT_LEN * len(FEEDS), distinct))


def synth_models(tmp):
    """Models written by fluid-synth, when the tool is built."""
    synth = os.path.join(build_dir(), "fluid-synth")
    if not os.path.exists(synth):
        print("note: fluid-synth is not built; checking only the reference's own models")
        return []
    specs = SYNTH_MODELS
    if not SANITIZED:
        specs = specs + REAL_WIDTH_MODELS
    models = []
    for i, (arch, preset, wtype, std, extra) in enumerate(specs):
        path = os.path.join(tmp, f"synth-{arch}-{preset}-{wtype}.gguf")
        cmd = [synth, "--arch", arch, "--preset", preset, "--type", wtype, "--seed", str(10 + i),
               "--std", str(std), "-o", path] + extra
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
        models.append((f"fluid-synth {arch} {preset} {wtype} {' '.join(extra)}".strip(), path))
    return models


def main():
    tool = os.path.join(build_dir(), "fluid-logits")
    if not os.path.exists(tool):
        print(f"FAIL: {tool} is not built")
        return 1
    failures, summary = [], []
    with tempfile.TemporaryDirectory() as tmp:
        models = []
        for i, (label, arch, kwargs) in enumerate(WRITTEN_MODELS):
            path = os.path.join(tmp, f"model{i}.gguf")
            ref.write_tiny_model(path, arch, seed=100 + i, **kwargs)
            models.append((label, path))
        models += synth_models(tmp)
        for i, (label, path) in enumerate(models):
            try:
                check_model(label, tool, path, 1000 + i, tmp, failures, summary)
            except AssertionError as e:
                failures.append(f"{label}: {e}")
    for label, worst, positions, distinct in summary:
        print(f"{label:40s} worst relative error {worst:.3e} over {positions} positions; "
              f"greedy: {distinct} distinct tokens")
    print(f"{len(summary)} models, tolerance {TOLERANCE}, greedy {N_GENERATE} tokens per feed")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""End to end: a model converted by fluid-quantize gives logits close to the same model in F32.

A random model (llama and qwen2 shapes with n_embd 256 and n_ff 512, so that the K-quants are
used and not replaced by their 32-block fallbacks) is written in F32 by the numpy reference's
writer, converted to every file type, and a 24-token prompt is evaluated by fluid-logits. The
error measure is the worst relative error over the positions, max|a - b| / max|b|.

Two checks per type:
- kernels: the quantized model against the same weights dequantized back to F32 (fluid-quantize
  OUT back.gguf f32). Only the 8-bit quantization of the activations separates the two, so the
  error must stay below KERNEL_TOLERANCE for every type (a wrong scale or code anywhere would
  blow it up).
- SIMD vs scalar: the quantized model with FLUID_SIMD=off gives close logits (see below).
- quality: the quantized model against the original F32 one, within the type's tolerance below
  (about 1.5x what was measured when it was set: random models amplify the weight error about
  7x, so these look large; run with SHOW=1 to print the errors).
The tensor types the converter chose are checked against the policy, and so are those of a
model written by fluid-synth --type q4_k_m (which must run like its dequantized weights too).
"""

import os
import re
import struct
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

KERNEL_TOLERANCE = 0.1
# the same quantized model on the active SIMD kernels and on the scalar ones (FLUID_SIMD=off):
# the integer sums are identical and only the order of float additions differs, but a last-bit
# difference can move an activation across a rounding boundary of the 8-bit quantization, and
# one such flip changes the logits of that position and every later one by about 1% (measured
# up to 0.03 on this model); the kernel tests check the SIMD paths exactly.
SCALAR_TOLERANCE = 0.06

# file type -> tolerance on the relative logit error against the F32 model (measured: f16
# 0.0015, bf16 0.013, q8_0 0.047, q6_k 0.14, q5_1 0.25, q5_0 0.27, q5_k_m 0.27, q4_1 0.55,
# q4_0 0.74, q4_k_m 0.44)
TOLERANCE = {
    "f16": 0.003, "bf16": 0.02, "q8_0": 0.07, "q6_k": 0.2, "q5_1": 0.4, "q5_0": 0.4,
    "q5_k_m": 0.4, "q4_1": 0.8, "q4_0": 1.1, "q4_k_m": 0.7,
}

# types expected for a few tensors of a 4-layer model (layers 2 and 3 get more bits in the
# K_M mixtures; 256-wide rows; output tied to token_embd)
EXPECTED = {
    "q4_k_m": {"blk.2.attn_v.weight": "q6_k", "blk.1.attn_v.weight": "q4_k",
               "blk.3.ffn_down.weight": "q6_k", "blk.1.ffn_up.weight": "q4_k",
               "token_embd.weight": "q6_k", "blk.1.attn_norm.weight": "f32"},
    "q5_k_m": {"blk.2.ffn_down.weight": "q6_k", "blk.0.ffn_down.weight": "q5_k",
               "blk.2.attn_q.weight": "q5_k"},
    "q4_0": {"blk.0.attn_v.weight": "q4_0", "token_embd.weight": "q6_k"},
    "q8_0": {"token_embd.weight": "q8_0"},
}

PROMPT = [(7 * i + 3) % 300 for i in range(24)]

GGUF_TYPE_NAMES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0",
                   12: "q4_k", 13: "q5_k", 14: "q6_k", 30: "bf16"}
VALUE_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def tensor_types(path):
    """{tensor name: type name} and the u32 general.file_type, read from a GGUF header."""
    with open(path, "rb") as f:
        data = f.read(1 << 24)
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", data, 8)

    def string():
        nonlocal pos
        n = struct.unpack_from("<Q", data, pos)[0]
        pos += 8 + n
        return data[pos - n:pos].decode()

    def skip(vtype):
        nonlocal pos
        if vtype == 8:
            string()
        elif vtype == 9:
            etype, count = struct.unpack_from("<IQ", data, pos)
            pos += 12
            for _ in range(count):
                skip(etype)
        else:
            pos += VALUE_SIZES[vtype]

    file_type = None
    for _ in range(n_kv):
        key = string()
        vtype = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        if key == "general.file_type":
            file_type = struct.unpack_from("<I", data, pos)[0]
        skip(vtype)
    types = {}
    for _ in range(n_tensors):
        name = string()
        n_dims = struct.unpack_from("<I", data, pos)[0]
        pos += 4 + 8 * n_dims
        types[name] = GGUF_TYPE_NAMES.get(struct.unpack_from("<I", data, pos)[0], "?")
        pos += 12
    return types, file_type


def check_synth(tmp, failures):
    """fluid-synth --type q4_k_m on a real width (one layer of the Qwen2.5-0.5B shape): the
    tensor types follow the policy (896-wide rows fall back to Q5_0, ffn_down 4864-wide is a
    K-quant, the tied output is Q8_0), general.file_type is 15, and the model runs close to
    its own dequantized weights."""
    synth = os.path.join(build_dir(), "fluid-synth")
    if not os.path.exists(synth):
        return
    model = os.path.join(tmp, "synth-q4_k_m.gguf")
    run([synth, "--arch", "qwen2", "--preset", "qwen2.5-0.5b", "--layers", "1", "--type",
         "q4_k_m", "-o", model])
    types, file_type = tensor_types(model)
    want = {"blk.0.attn_q.weight": "q5_0", "blk.0.ffn_down.weight": "q6_k",
            "blk.0.ffn_up.weight": "q5_0", "token_embd.weight": "q8_0",
            "blk.0.attn_q.bias": "f32"}
    for name, t in want.items():
        if types.get(name) != t:
            failures.append(f"fluid-synth q4_k_m: {name} is {types.get(name)}, want {t}")
    if file_type != 15:
        failures.append(f"fluid-synth q4_k_m: general.file_type {file_type}, want 15")
    back = os.path.join(tmp, "synth-back.gguf")
    run([os.path.join(build_dir(), "fluid-quantize"), model, back, "f32"])
    err = relative_error(logits(model, os.path.join(tmp, "s.bin")),
                         logits(back, os.path.join(tmp, "b.bin")))
    if not err <= KERNEL_TOLERANCE:
        failures.append(f"fluid-synth q4_k_m: error vs dequantized weights {err:.5f}")


def build_dir():
    return os.environ.get("FLUID_BUILD_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "build")


def run(cmd, env=None):
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, **(env or {})))
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def relative_error(got, want):
    return float((np.abs(got - want).max(axis=1) / np.abs(want).max(axis=1)).max())


def logits(model, out, env=None):
    run([os.path.join(build_dir(), "fluid-logits"), "-m", model, "-o", out, "-t", "2"]
        + [str(t) for t in PROMPT], env)
    return np.fromfile(out, dtype=np.float32).reshape(len(PROMPT), -1)


def main():
    quantize = os.path.join(build_dir(), "fluid-quantize")
    if not os.path.exists(quantize) or not os.path.exists(os.path.join(build_dir(), "fluid-logits")):
        print("SKIP: fluid-quantize or fluid-logits not built")
        return 77
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        # one architecture in the sanitizer build (slow start-up of every tool run)
        archs = ("llama",) if os.environ.get("FLUID_SANITIZE") == "1" else ("llama", "qwen2")
        for arch in archs:
            base = os.path.join(tmp, f"{arch}-f32.gguf")
            ref.write_tiny_model(base, arch, wtype="f32", n_embd=256, n_ff=512, n_layer=4,
                                 std=0.05)
            want = logits(base, os.path.join(tmp, "f32.bin"))
            for ftype, tol in TOLERANCE.items():
                out = os.path.join(tmp, f"{arch}-{ftype}.gguf")
                listing = run([quantize, base, out, ftype, "-t", "2"])
                types = dict(re.findall(r"^(\S+)\s+\[.*\]\s+\S+\s+->\s+(\S+)$", listing, re.M))
                for name, t in EXPECTED.get(ftype, {}).items():
                    if types.get(name) != t:
                        failures.append(f"{arch} {ftype}: {name} is {types.get(name)}, want {t}")
                got = logits(out, os.path.join(tmp, f"{ftype}.bin"))
                back = os.path.join(tmp, f"{arch}-{ftype}-back.gguf")
                run([quantize, out, back, "f32"])
                exact = logits(back, os.path.join(tmp, "back.bin"))
                kerr = relative_error(got, exact)
                scalar = logits(out, os.path.join(tmp, "scalar.bin"), {"FLUID_SIMD": "off"})
                serr = relative_error(got, scalar)
                if not serr <= SCALAR_TOLERANCE:
                    failures.append(f"{arch} {ftype}: SIMD vs scalar kernels differ by {serr:.2e}")
                err = relative_error(got, want)
                if os.environ.get("SHOW"):
                    print(f"{arch} {ftype}: vs dequantized {kerr:.5f}, vs f32 {err:.5f}")
                if not kerr <= KERNEL_TOLERANCE:
                    failures.append(f"{arch} {ftype}: error vs dequantized weights {kerr:.5f}")
                if not err <= tol:
                    failures.append(f"{arch} {ftype}: relative logit error {err:.5f} > {tol}")
        check_synth(tmp, failures)
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

"""Independent numpy reference for the llama-family forward pass (llama, qwen2, qwen3, phi3).

Written from the math in LLM_CONTRACT.md, not from the engine's C code. It has its own small
GGUF reader (F32/F16/BF16 tensors) and writer, so that the engine can be checked against files
it did not write, and it reads the files fluid-synth writes too. Everything is computed in
float64.

Command line (for poking at a model by hand):
    reference_llm.py logits MODEL.gguf TOKEN...     prints the argmax and max |logit| per position
    reference_llm.py write ARCH TYPE SEED OUT.gguf  writes a tiny random model
"""

import struct
import sys

import numpy as np

# ---- GGUF ------------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"
T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STR, T_ARR, T_U64, T_I64, T_F64 = range(13)
SCALAR_FORMATS = {
    T_U8: "<B", T_I8: "<b", T_U16: "<H", T_I16: "<h", T_U32: "<I", T_I32: "<i",
    T_F32: "<f", T_BOOL: "<?", T_U64: "<Q", T_I64: "<q", T_F64: "<d",
}
TYPE_F32, TYPE_F16, TYPE_BF16 = 0, 1, 30
TYPE_NAMES = {"f32": TYPE_F32, "f16": TYPE_F16, "bf16": TYPE_BF16}


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated GGUF file")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def scalar(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        return self.take(self.scalar("<Q")).decode("utf-8", errors="replace")

    def value(self, vtype):
        if vtype == T_STR:
            return self.string()
        if vtype == T_ARR:
            elem_type = self.scalar("<I")
            count = self.scalar("<Q")
            return [self.value(elem_type) for _ in range(count)]
        return self.scalar(SCALAR_FORMATS[vtype])


def bf16_bits_to_f32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """Round to nearest even, as a float32 -> bfloat16 conversion does."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def read_gguf(path):
    """Returns (metadata dict, {name: float64 array shaped ne reversed, i.e. [rows, cols]})."""
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if r.take(4) != GGUF_MAGIC:
        raise ValueError("not a GGUF file")
    version = r.scalar("<I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version}")
    n_tensors = r.scalar("<Q")
    n_kv = r.scalar("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.scalar("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.scalar("<I")
        ne = [r.scalar("<Q") for _ in range(n_dims)]
        ttype = r.scalar("<I")
        offset = r.scalar("<Q")
        infos.append((name, ne, ttype, offset))
    align = meta.get("general.alignment", 32)
    base = (r.pos + align - 1) // align * align
    tensors = {}
    for name, ne, ttype, offset in infos:
        count = int(np.prod(ne))
        start = base + offset
        if ttype == TYPE_F32:
            arr = np.frombuffer(data, dtype="<f4", count=count, offset=start)
        elif ttype == TYPE_F16:
            arr = np.frombuffer(data, dtype="<f2", count=count, offset=start)
        elif ttype == TYPE_BF16:
            arr = bf16_bits_to_f32(np.frombuffer(data, dtype="<u2", count=count, offset=start))
        else:
            raise ValueError(f"tensor {name}: type {ttype} is not read by the reference")
        tensors[name] = arr.astype(np.float64).reshape(list(reversed(ne)))
    return meta, tensors


class Writer:
    """Collects metadata and tensors and writes a GGUF v3 file."""

    def __init__(self):
        self.kv = []
        self.tensors = []

    def add(self, key, vtype, value, elem_type=None):
        self.kv.append((key, vtype, value, elem_type))

    def add_tensor(self, name, array, ttype):
        """array is [rows, cols] (or 1-D); stored with ne = reversed shape."""
        a = np.asarray(array, dtype=np.float32)
        if ttype == TYPE_F32:
            raw = a.astype("<f4").tobytes()
        elif ttype == TYPE_F16:
            raw = a.astype("<f2").tobytes()
        elif ttype == TYPE_BF16:
            raw = f32_to_bf16_bits(a).astype("<u2").tobytes()
        else:
            raise ValueError(ttype)
        self.tensors.append((name, list(reversed(a.shape)), ttype, raw))

    @staticmethod
    def _string(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def _value(self, vtype, value, elem_type):
        if vtype == T_STR:
            return self._string(value)
        if vtype == T_ARR:
            out = struct.pack("<IQ", elem_type, len(value))
            return out + b"".join(self._value(elem_type, v, None) for v in value)
        return struct.pack(SCALAR_FORMATS[vtype], value)

    def write(self, path, align=32):
        head = GGUF_MAGIC + struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))
        for key, vtype, value, elem_type in self.kv:
            head += self._string(key) + struct.pack("<I", vtype) + self._value(vtype, value, elem_type)
        blobs, offset = [], 0
        for name, ne, ttype, raw in self.tensors:
            head += self._string(name) + struct.pack("<I", len(ne))
            head += b"".join(struct.pack("<Q", n) for n in ne)
            head += struct.pack("<IQ", ttype, offset)
            pad = (-len(raw)) % align
            blobs.append(raw + b"\0" * pad)
            offset += len(raw) + pad
        head += b"\0" * ((-len(head)) % align)
        with open(path, "wb") as f:
            f.write(head)
            for b in blobs:
                f.write(b)


# ---- the model -------------------------------------------------------------------------------

NEOX_ARCHS = ("qwen2", "qwen3", "phi3")


class Model:
    def __init__(self, path):
        meta, self.t = read_gguf(path)
        a = meta["general.architecture"]
        self.arch = a
        self.n_embd = meta[f"{a}.embedding_length"]
        self.n_layer = meta[f"{a}.block_count"]
        self.n_ff = meta[f"{a}.feed_forward_length"]
        self.n_head = meta[f"{a}.attention.head_count"]
        self.n_head_kv = meta.get(f"{a}.attention.head_count_kv", self.n_head)
        self.head_dim = meta.get(f"{a}.attention.key_length", self.n_embd // self.n_head)
        self.n_rot = meta.get(f"{a}.rope.dimension_count", self.head_dim)
        self.eps = meta[f"{a}.attention.layer_norm_rms_epsilon"]
        self.theta = meta.get(f"{a}.rope.freq_base", 10000.0)
        scaling = meta.get(f"{a}.rope.scaling.type", "none")
        if scaling == "linear":
            self.pos_scale = 1.0 / meta[f"{a}.rope.scaling.factor"]
        elif scaling == "none":
            self.pos_scale = 1.0
        else:
            raise ValueError(f"rope scaling {scaling}")
        self.embd = self.t["token_embd.weight"]
        self.output = self.t.get("output.weight", self.embd)
        self.n_vocab = self.embd.shape[0]
        i = np.arange(self.n_rot // 2)
        self.inv_freq = self.theta ** (-2.0 * i / self.n_rot)
        if "rope_freqs.weight" in self.t:
            self.inv_freq = self.inv_freq / self.t["rope_freqs.weight"]

    def w(self, il, name):
        return self.t[f"blk.{il}.{name}"]

    def rmsnorm(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def rope(self, x, positions):
        """x: [n_tok, heads, head_dim]; rotates the first n_rot dims of every head."""
        half = self.n_rot // 2
        angle = (positions * self.pos_scale)[:, None] * self.inv_freq[None, :]  # [n_tok, half]
        cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
        x = x.copy()
        if self.arch in NEOX_ARCHS:
            a, b = x[..., :half].copy(), x[..., half:self.n_rot].copy()
            x[..., :half] = a * cos - b * sin
            x[..., half:self.n_rot] = a * sin + b * cos
        else:
            a, b = x[..., 0:self.n_rot:2].copy(), x[..., 1:self.n_rot:2].copy()
            x[..., 0:self.n_rot:2] = a * cos - b * sin
            x[..., 1:self.n_rot:2] = a * sin + b * cos
        return x

    def qkv(self, il, h):
        q_dim, kv_dim = self.n_head * self.head_dim, self.n_head_kv * self.head_dim
        if self.arch == "phi3":
            fused = h @ self.w(il, "attn_qkv.weight").T
            return fused[:, :q_dim], fused[:, q_dim:q_dim + kv_dim], fused[:, q_dim + kv_dim:]
        q = h @ self.w(il, "attn_q.weight").T
        k = h @ self.w(il, "attn_k.weight").T
        v = h @ self.w(il, "attn_v.weight").T
        if self.arch == "qwen2":
            q = q + self.w(il, "attn_q.bias")
            k = k + self.w(il, "attn_k.bias")
            v = v + self.w(il, "attn_v.bias")
        return q, k, v

    def attention(self, il, h, positions):
        n = h.shape[0]
        q, k, v = self.qkv(il, h)
        q = q.reshape(n, self.n_head, self.head_dim)
        k = k.reshape(n, self.n_head_kv, self.head_dim)
        v = v.reshape(n, self.n_head_kv, self.head_dim)
        if self.arch == "qwen3":
            q = self.rmsnorm(q, self.w(il, "attn_q_norm.weight"))
            k = self.rmsnorm(k, self.w(il, "attn_k_norm.weight"))
        q, k = self.rope(q, positions), self.rope(k, positions)
        group = self.n_head // self.n_head_kv
        out = np.zeros((n, self.n_head, self.head_dim))
        causal = np.tril(np.ones((n, n), dtype=bool))
        for hq in range(self.n_head):
            kv = hq // group
            scores = q[:, hq, :] @ k[:, kv, :].T / np.sqrt(self.head_dim)
            scores = np.where(causal, scores, -np.inf)
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            out[:, hq, :] = p @ v[:, kv, :]
        return out.reshape(n, -1) @ self.w(il, "attn_output.weight").T

    def ffn(self, il, h):
        if self.arch == "phi3":
            gate_up = h @ self.w(il, "ffn_up.weight").T
            gate, up = gate_up[:, :self.n_ff], gate_up[:, self.n_ff:]
        else:
            gate = h @ self.w(il, "ffn_gate.weight").T
            up = h @ self.w(il, "ffn_up.weight").T
        silu = gate / (1.0 + np.exp(-gate))
        return (silu * up) @ self.w(il, "ffn_down.weight").T

    def logits(self, tokens):
        """Logits [len(tokens), n_vocab] of a sequence starting at position 0."""
        tokens = np.asarray(tokens, dtype=np.int64)
        positions = np.arange(len(tokens), dtype=np.float64)
        x = self.embd[tokens]
        for il in range(self.n_layer):
            x = x + self.attention(il, self.rmsnorm(x, self.w(il, "attn_norm.weight")), positions)
            x = x + self.ffn(il, self.rmsnorm(x, self.w(il, "ffn_norm.weight")))
        return self.rmsnorm(x, self.t["output_norm.weight"]) @ self.output.T


# ---- tiny random models ----------------------------------------------------------------------

def write_tiny_model(path, arch, wtype="f32", seed=1, n_vocab=300, n_embd=64, n_layer=2,
                     n_head=4, n_head_kv=2, n_ff=160, head_dim=None, n_rot=None, tied=True,
                     rope_freqs=False, rope_linear_factor=None, theta=10000.0, norm_type="f32",
                     std=0.1, n_ctx=512):
    """Writes a model with random weights. Norm weights are 1 + noise (so that a pass which
    ignores them is caught) and biases are random; matrices are stored as `wtype`."""
    rng = np.random.default_rng(seed)
    head_dim = head_dim or n_embd // n_head
    q_dim, kv_dim = n_head * head_dim, n_head_kv * head_dim
    mtype, ntype = TYPE_NAMES[wtype], TYPE_NAMES[norm_type]

    def normal(*shape):
        return rng.normal(0.0, std, size=shape)

    def norm(n):
        return 1.0 + rng.normal(0.0, 0.2, size=n)

    w = Writer()
    w.add("general.architecture", T_STR, arch)
    w.add("general.name", T_STR, f"tiny {arch} {wtype}")
    w.add("general.file_type", T_U32, {"f32": 0, "f16": 1, "bf16": 32}[wtype])
    w.add(f"{arch}.context_length", T_U32, n_ctx)
    w.add(f"{arch}.embedding_length", T_U32, n_embd)
    w.add(f"{arch}.block_count", T_U32, n_layer)
    w.add(f"{arch}.feed_forward_length", T_U32, n_ff)
    w.add(f"{arch}.attention.head_count", T_U32, n_head)
    w.add(f"{arch}.attention.head_count_kv", T_U32, n_head_kv)
    w.add(f"{arch}.attention.layer_norm_rms_epsilon", T_F32, 1e-5)
    w.add(f"{arch}.rope.freq_base", T_F32, theta)
    if head_dim != n_embd // n_head:
        w.add(f"{arch}.attention.key_length", T_U32, head_dim)
        w.add(f"{arch}.attention.value_length", T_U32, head_dim)
    if n_rot is not None:
        w.add(f"{arch}.rope.dimension_count", T_U32, n_rot)
    if rope_linear_factor is not None:
        w.add(f"{arch}.rope.scaling.type", T_STR, "linear")
        w.add(f"{arch}.rope.scaling.factor", T_F32, rope_linear_factor)

    w.add_tensor("token_embd.weight", normal(n_vocab, n_embd), mtype)
    w.add_tensor("output_norm.weight", norm(n_embd), ntype)
    if not tied:
        w.add_tensor("output.weight", normal(n_vocab, n_embd), mtype)
    if rope_freqs:
        pairs = (n_rot or head_dim) // 2
        w.add_tensor("rope_freqs.weight", rng.uniform(1.0, 8.0, size=pairs), TYPE_F32)
    for il in range(n_layer):
        p = f"blk.{il}."
        w.add_tensor(p + "attn_norm.weight", norm(n_embd), ntype)
        if arch == "phi3":
            w.add_tensor(p + "attn_qkv.weight", normal(q_dim + 2 * kv_dim, n_embd), mtype)
        else:
            w.add_tensor(p + "attn_q.weight", normal(q_dim, n_embd), mtype)
            w.add_tensor(p + "attn_k.weight", normal(kv_dim, n_embd), mtype)
            w.add_tensor(p + "attn_v.weight", normal(kv_dim, n_embd), mtype)
        if arch == "qwen2":
            w.add_tensor(p + "attn_q.bias", normal(q_dim), ntype)
            w.add_tensor(p + "attn_k.bias", normal(kv_dim), ntype)
            w.add_tensor(p + "attn_v.bias", normal(kv_dim), ntype)
        if arch == "qwen3":
            w.add_tensor(p + "attn_q_norm.weight", norm(head_dim), ntype)
            w.add_tensor(p + "attn_k_norm.weight", norm(head_dim), ntype)
        w.add_tensor(p + "attn_output.weight", normal(n_embd, q_dim), mtype)
        w.add_tensor(p + "ffn_norm.weight", norm(n_embd), ntype)
        if arch == "phi3":
            w.add_tensor(p + "ffn_up.weight", normal(2 * n_ff, n_embd), mtype)
        else:
            w.add_tensor(p + "ffn_gate.weight", normal(n_ff, n_embd), mtype)
            w.add_tensor(p + "ffn_up.weight", normal(n_ff, n_embd), mtype)
        w.add_tensor(p + "ffn_down.weight", normal(n_embd, n_ff), mtype)
    w.write(path)


def main(argv):
    if len(argv) >= 3 and argv[1] == "logits":
        model = Model(argv[2])
        out = model.logits([int(t) for t in argv[3:]])
        for pos, row in enumerate(out):
            print(pos, int(np.argmax(row)), float(np.abs(row).max()))
        return 0
    if len(argv) == 6 and argv[1] == "write":
        write_tiny_model(argv[5], argv[2], argv[3], int(argv[4]))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

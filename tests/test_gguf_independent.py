"""fluid-synth files read by a GGUF parser that shares no code with ours (written here from the
format description): header, metadata, tensor infos, alignment and data layout, the contract's
tensor names and shapes, and the statistics of the random weights."""

import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
           11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
F32, F16, BF16 = 0, 1, 30
TYPE_BYTES = {F32: 4, F16: 2, BF16: 2}


class Parser:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        assert self.pos + n <= len(self.data), "read past the end of the file"
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        raw = self.take(self.unpack("<Q"))
        return raw.decode("utf-8")  # keys, names and tokens must be valid UTF-8

    def value(self, vtype):
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            etype, count = self.unpack("<I"), self.unpack("<Q")
            return (etype, [self.value(etype) for _ in range(count)])
        return self.unpack(SCALARS[vtype])


def parse(path):
    data = open(path, "rb").read()
    p = Parser(data)
    assert p.take(4) == b"GGUF"
    version, n_tensors, n_kv = p.unpack("<I"), p.unpack("<Q"), p.unpack("<Q")
    assert version == 3, version
    meta, types = {}, {}
    for _ in range(n_kv):
        key = p.string()
        vtype = p.unpack("<I")
        assert key not in meta, f"duplicate key {key}"
        meta[key] = p.value(vtype)
        types[key] = vtype
    infos = []
    for _ in range(n_tensors):
        name = p.string()
        n_dims = p.unpack("<I")
        assert 1 <= n_dims <= 4
        ne = [p.unpack("<Q") for _ in range(n_dims)]
        ttype, offset = p.unpack("<I"), p.unpack("<Q")
        infos.append((name, ne, ttype, offset))
    align = meta.get("general.alignment", 32)
    assert align & (align - 1) == 0
    start = (p.pos + align - 1) // align * align
    assert all(b == 0 for b in data[p.pos:start]), "padding before the data is not zero"
    tensors, end = {}, 0
    for name, ne, ttype, offset in sorted(infos, key=lambda i: i[3]):
        assert name not in tensors, f"duplicate tensor {name}"
        assert offset % align == 0, f"{name}: offset {offset} not aligned"
        assert offset >= end, f"{name} overlaps the previous tensor"
        count = int(np.prod(ne))
        nbytes = count * TYPE_BYTES[ttype]
        assert start + offset + nbytes <= len(data), f"{name} runs past the end"
        raw = np.frombuffer(data, dtype="<u2" if ttype != F32 else "<f4", count=count,
                            offset=start + offset)
        if ttype == F16:
            values = raw.view("<f2").astype(np.float64)
        elif ttype == BF16:
            values = (raw.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        else:
            values = raw.astype(np.float64)
        tensors[name] = (ne, ttype, values)
        end = offset + nbytes
    assert len(data) == start + (end + align - 1) // align * align, "unexpected file size"
    return meta, types, tensors


def expected_tensors(arch, n_vocab, n_embd=64, n_ff=160, n_head=4, n_head_kv=2, n_layer=2):
    """Name -> ne of a tiny model, from LLM_CONTRACT.md."""
    hd = 32 if arch == "qwen3" else n_embd // n_head
    q, kv = n_head * hd, n_head_kv * hd
    t = {"token_embd.weight": [n_embd, n_vocab], "output.weight": [n_embd, n_vocab],
         "output_norm.weight": [n_embd]}
    for i in range(n_layer):
        b = f"blk.{i}."
        t[b + "attn_norm.weight"] = [n_embd]
        t[b + "ffn_norm.weight"] = [n_embd]
        t[b + "attn_output.weight"] = [q, n_embd]
        t[b + "ffn_down.weight"] = [n_ff, n_embd]
        if arch == "phi3":
            t[b + "attn_qkv.weight"] = [n_embd, q + 2 * kv]
            t[b + "ffn_up.weight"] = [n_embd, 2 * n_ff]
        else:
            t[b + "attn_q.weight"] = [n_embd, q]
            t[b + "attn_k.weight"] = [n_embd, kv]
            t[b + "attn_v.weight"] = [n_embd, kv]
            t[b + "ffn_gate.weight"] = [n_embd, n_ff]
            t[b + "ffn_up.weight"] = [n_embd, n_ff]
        if arch == "qwen2":
            t[b + "attn_q.bias"] = [q]
            t[b + "attn_k.bias"] = [kv]
            t[b + "attn_v.bias"] = [kv]
        if arch == "qwen3":
            t[b + "attn_q_norm.weight"] = [hd]
            t[b + "attn_k_norm.weight"] = [hd]
    return t


def check(synth, tmp, arch, wtype, std, seed):
    path = os.path.join(tmp, f"{arch}-{wtype}.gguf")
    subprocess.run([synth, "--arch", arch, "--preset", "tiny", "--type", wtype, "--seed",
                    str(seed), "--std", str(std), "-o", path], check=True,
                   stdout=subprocess.DEVNULL)
    meta, types, tensors = parse(path)
    assert meta["general.architecture"] == arch
    assert types[f"{arch}.embedding_length"] == 4  # u32
    etype, tokens = meta["tokenizer.ggml.tokens"]
    assert etype == STRING
    n_vocab = len(tokens)
    assert len(set(tokens)) == n_vocab, "duplicate tokens"
    assert meta["tokenizer.ggml.token_type"][0] == 5  # i32
    assert len(meta["tokenizer.ggml.token_type"][1]) == n_vocab
    assert meta[f"{arch}.vocab_size"] == n_vocab
    assert meta[f"{arch}.block_count"] == 2
    vocab = set(tokens)
    for merge in meta["tokenizer.ggml.merges"][1]:
        left, right = merge.split(" ")
        assert left in vocab and right in vocab and left + right in vocab, merge

    want = expected_tensors(arch, n_vocab)
    assert set(tensors) == set(want), set(tensors) ^ set(want)
    matrix_type = {"f32": F32, "f16": F16, "bf16": BF16}[wtype]
    all_weights = []
    for name, (ne, ttype, values) in tensors.items():
        assert ne == want[name], (name, ne, want[name])
        if len(ne) == 1:
            assert ttype == F32, name
        else:
            assert ttype == matrix_type, name
        if name.endswith("norm.weight"):
            assert np.all(values == 1.0), name
        else:
            all_weights.append(values)
            n = values.size
            assert abs(values.mean()) < 5 * std / np.sqrt(n), (name, values.mean())
            # the sample std's relative error is about 1/sqrt(2n): allow 5 of those
            assert abs(values.std() / std - 1) < 5 / np.sqrt(2 * n), (name, values.std())
    w = np.concatenate(all_weights)
    assert abs(w.mean()) < 5 * std / np.sqrt(w.size)
    assert abs(w.std() / std - 1) < 0.01, w.std()
    # normal, not uniform: about 68.3% of the samples within one standard deviation
    inside = np.mean(np.abs(w) < std)
    assert abs(inside - 0.6827) < 0.01, inside
    os.unlink(path)
    print(f"{arch} {wtype}: {len(tensors)} tensors, {w.size} weights, mean {w.mean():.2e}, "
          f"std {w.std():.5f} (want {std})")


def main():
    build = os.environ.get("FLUID_BUILD_DIR", "build")
    synth = os.path.join(build, "fluid-synth")
    if not os.access(synth, os.X_OK):
        print(f"skip: {synth} not built")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        check(synth, tmp, "qwen2", "f32", 0.05, 1)
        check(synth, tmp, "phi3", "f16", 0.02, 2)
        check(synth, tmp, "qwen3", "bf16", 0.1, 3)
        check(synth, tmp, "llama", "f32", 0.02, 4)
    return 0


if __name__ == "__main__":
    sys.exit(main())

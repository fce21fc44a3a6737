"""Whisper from the math, in numpy (float64): a reader of the ggml whisper file, the log-mel
spectrogram, the encoder and the decoder. Written from the model's definition, independently
of the C engine, which tests/test_whisper_reference.py compares against it."""
import struct
import wave

import numpy as np

GGML_MAGIC = 0x67676D6C
N_FFT, HOP, SAMPLE_RATE, CHUNK_SAMPLES = 400, 160, 16000, 480000

# (block size, bytes per block) of the tensor types the reader understands: F32, F16, Q8_0
TYPES = {0: (1, 4), 1: (1, 2), 8: (32, 34)}


def dequantize(raw, ttype, count):
    if ttype == 0:
        return np.frombuffer(raw, dtype="<f4").astype(np.float64)
    if ttype == 1:
        return np.frombuffer(raw, dtype="<f2").astype(np.float64)
    # Q8_0: blocks of an f16 scale then 32 int8 values
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "i1", 32)]))
    return (blocks["d"].astype(np.float64)[:, None] * blocks["qs"].astype(np.float64)).ravel()


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated file")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def i32(self, count=1):
        vals = struct.unpack("<%di" % count, self.take(4 * count))
        return vals if count > 1 else vals[0]


def load_model(path):
    """Returns (hparams dict, mel filters [n_mels, 201], {name: float64 array in torch order})."""
    r = Reader(open(path, "rb").read())
    if struct.unpack("<I", r.take(4))[0] != GGML_MAGIC:
        raise ValueError("bad magic")
    names = ["n_vocab", "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer",
             "n_text_ctx", "n_text_state", "n_text_head", "n_text_layer", "n_mels", "ftype"]
    hp = dict(zip(names, r.i32(11)))
    n_mel, n_fft = r.i32(2)
    filters = np.frombuffer(r.take(4 * n_mel * n_fft), dtype="<f4").reshape(n_mel, n_fft)
    for _ in range(r.i32()):
        r.take(r.i32())
    tensors = {}
    while r.pos < len(r.data):
        n_dims, name_len, ttype = r.i32(3)
        ne = r.i32(n_dims) if n_dims > 1 else (r.i32(),)
        name = r.take(name_len).decode()
        count = int(np.prod(ne))
        if ttype not in TYPES:
            raise ValueError("reference reader: unsupported type %d" % ttype)
        block, block_bytes = TYPES[ttype]
        raw = r.take(count // block * block_bytes)
        # ggml's ne[0] is the innermost dimension: numpy's shape is ne reversed
        tensors[name] = dequantize(raw, ttype, count).reshape(ne[::-1])
    return hp, filters.astype(np.float64), tensors


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == SAMPLE_RATE
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0


def log_mel(audio, filters, padding=CHUNK_SAMPLES):
    """Whisper's log-mel: centred STFT with reflect padding, periodic Hann window, power, mel
    filters, log10 floored at 1e-10, clamped to max - 8, then (x + 4) / 4."""
    x = np.concatenate([audio, np.zeros(padding)])
    x = np.pad(x, (N_FFT // 2, N_FFT // 2), mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)
    n_frames = 1 + (len(x) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(x[idx] * window, axis=1)
    power = (np.abs(spec) ** 2)[:-1]  # the last frame is dropped
    mel = filters @ power.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def gelu(x):
    from math import erf, sqrt
    return 0.5 * x * (1.0 + np.vectorize(erf)(x / sqrt(2.0)))


def layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def linear(t, prefix, x, bias=True):
    y = x @ t[prefix + ".weight"].T
    return y + t[prefix + ".bias"] if bias else y


def attention(q, k, v, n_head, mask=None):
    T, n = q.shape
    dh = n // n_head
    out = np.zeros((T, n))
    for h in range(n_head):
        s = slice(h * dh, (h + 1) * dh)
        scores = q[:, s] @ k[:, s].T / np.sqrt(dh)
        if mask is not None:
            scores = scores + mask
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        out[:, s] = scores @ v[:, s]
    return out


def mha(t, prefix, x, kv, n_head, mask=None):
    q = linear(t, prefix + ".query", x)
    k = linear(t, prefix + ".key", kv, bias=False)
    v = linear(t, prefix + ".value", kv)
    return linear(t, prefix + ".out", attention(q, k, v, n_head, mask))


def conv1d(x, w, b, stride):
    """x [C_in, L], w [C_out, C_in, 3], padding 1."""
    xp = np.pad(x, ((0, 0), (1, 1)))
    L = (x.shape[1] + 2 - 3) // stride + 1
    out = np.zeros((w.shape[0], L))
    for k in range(3):
        out += w[:, :, k] @ xp[:, k:k + stride * (L - 1) + 1:stride]
    return out + b.reshape(-1, 1)


def encoder(hp, t, mel):
    """mel [n_mels, 3000] -> [n_audio_ctx, n_audio_state]"""
    x = gelu(conv1d(mel, t["encoder.conv1.weight"], t["encoder.conv1.bias"], 1))
    x = gelu(conv1d(x, t["encoder.conv2.weight"], t["encoder.conv2.bias"], 2)).T
    x = x + t["encoder.positional_embedding"]
    for i in range(hp["n_audio_layer"]):
        p = "encoder.blocks.%d." % i
        h = layer_norm(x, t[p + "attn_ln.weight"], t[p + "attn_ln.bias"])
        x = x + mha(t, p + "attn", h, h, hp["n_audio_head"])
        h = layer_norm(x, t[p + "mlp_ln.weight"], t[p + "mlp_ln.bias"])
        x = x + linear(t, p + "mlp.2", gelu(linear(t, p + "mlp.0", h)))
    return layer_norm(x, t["encoder.ln_post.weight"], t["encoder.ln_post.bias"])


def decoder(hp, t, tokens, audio):
    """Logits [len(tokens), n_vocab] of a whole token sequence (causal)."""
    n = len(tokens)
    emb = t["decoder.token_embedding.weight"]
    x = emb[tokens] + t["decoder.positional_embedding"][:n]
    mask = np.triu(np.full((n, n), -np.inf), 1)
    for i in range(hp["n_text_layer"]):
        p = "decoder.blocks.%d." % i
        h = layer_norm(x, t[p + "attn_ln.weight"], t[p + "attn_ln.bias"])
        x = x + mha(t, p + "attn", h, h, hp["n_text_head"], mask)
        h = layer_norm(x, t[p + "cross_attn_ln.weight"], t[p + "cross_attn_ln.bias"])
        x = x + mha(t, p + "cross_attn", h, audio, hp["n_text_head"])
        h = layer_norm(x, t[p + "mlp_ln.weight"], t[p + "mlp_ln.bias"])
        x = x + linear(t, p + "mlp.2", gelu(linear(t, p + "mlp.0", h)))
    x = layer_norm(x, t["decoder.ln.weight"], t["decoder.ln.bias"])
    return x @ emb.T

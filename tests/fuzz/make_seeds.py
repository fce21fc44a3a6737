#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Usage: make_seeds.py BUILD_DIR   (a normal build holding fuzz-make-seeds, for the GGUF seeds)

Seeds are small, valid or nearly valid inputs from which the fuzzers mutate: every request
field the API reads, every container the audio decoder probes, every model family's chat
template markers. Re-running it rewrites the same files (audio seeds depend on ffmpeg's
version, so they may differ in a few bytes)."""
import json
import os
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEP = b"\x1e"


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- api_json: request bodies of /v1/chat/completions and /v1/completions ----

def api_json():
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    bodies = {
        "chat-min": {"model": "m", "messages": [{"role": "user", "content": "Hello"}]},
        "chat-all": {
            "model": "qwen", "messages": msgs, "max_tokens": 16, "max_completion_tokens": 8,
            "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
            "repeat_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": -0.5,
            "seed": 42, "stop": ["\n", "END"], "logit_bias": {"15": -100, "7": 2.5}, "n": 1,
            "stream": True, "stream_options": {"include_usage": True}, "user": "u1",
            "logprobs": True, "top_logprobs": 3, "response_format": {"type": "text"}},
        "chat-parts": {"model": "m", "messages": [
            {"role": "developer", "content": [{"type": "text", "text": "a"}]},
            {"role": "user", "content": [{"type": "text", "text": "b"},
                                         {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "assistant", "content": None, "tool_calls": []}]},
        "chat-tools": {"model": "m", "messages": msgs, "tools": [{"type": "function"}],
                       "response_format": {"type": "json_object"}},
        "chat-bad-types": {"model": 5, "messages": "hi", "stop": 3, "logit_bias": [1],
                           "temperature": "hot", "stream_options": True},
        "completion-min": {"model": "m", "prompt": "Once upon a time"},
        "completion-all": {"model": "m", "prompt": ["a", "b"], "echo": True, "logprobs": 2,
                           "suffix": "x", "best_of": 1, "max_tokens": 4, "stop": "\n\n",
                           "stream": False},
        "completion-tokens": {"model": "m", "prompt": [1, 2, 3], "max_tokens": 131072,
                              "seed": -1, "top_logprobs": 21},
    }
    for name, body in bodies.items():
        write("api_json", name + ".json", json.dumps(body))
    write("api_json", "not-object.json", "[1, 2, {\"a\": null}]")
    write("api_json", "duplicate.json", '{"model": "a", "model": "b"}')
    write("api_json", "unicode.json",
          '{"model": "m", "messages": [{"role": "user", "content": "\\u00e9\\ud83d\\ude00\\u0000"}]}')


# ---- multipart: Content-Type SEP body of an audio upload ----

def multipart():
    wav = tiny_wav()

    def form(boundary, fields, file=wav, filename="a.wav"):
        out = b""
        for name, value in fields:
            out += b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name
            out += b"\"\r\n\r\n" + value + b"\r\n"
        if file is not None:
            out += b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"file\"; "
            out += b"filename=\"" + filename.encode() + b"\"\r\nContent-Type: audio/wav\r\n\r\n"
            out += file + b"\r\n"
        return out + b"--" + boundary + b"--\r\n"

    b = b"XyZ123"
    ct = b"multipart/form-data; boundary=" + b
    seeds = {
        "minimal": (ct, form(b, [(b"model", b"whisper-1")])),
        "all-fields": (ct, form(b, [
            (b"model", b"whisper-tiny"), (b"language", b"en"), (b"prompt", b"Names: Ana."),
            (b"response_format", b"verbose_json"), (b"temperature", b"0.2"),
            (b"timestamp_granularities[]", b"word"), (b"timestamp_granularities[]", b"segment"),
            (b"stream", b"false")])),
        "srt": (ct, form(b, [(b"response_format", b"srt")])),
        "stream": (ct, form(b, [(b"stream", b"true"), (b"response_format", b"text")])),
        "quoted-boundary": (b'multipart/form-data; charset=utf-8; boundary="a b:c"',
                            form(b"a b:c", [(b"language", b"french")])),
        "no-file": (ct, form(b, [(b"model", b"m")], file=None)),
        "preamble": (ct, b"preamble\r\n" + form(b, [(b"temperature", b"2")]) + b"epilogue"),
    }
    for name, (content_type, body) in seeds.items():
        write("multipart", name, content_type + SEP + body)


# ---- whisper_model: ggml whisper files (tiny shapes; n_mels = 1 keeps them small) ----

def whisper_tensor(name, dims, type_id=0):
    n = 1
    for d in dims:
        n *= d
    data = struct.pack("<%df" % n, *([0.01] * n)) if type_id == 0 else b"\0\x3c" * n
    return (struct.pack("<3i", len(dims), len(name), type_id) + struct.pack("<%di" % len(dims), *dims)
            + name.encode() + data)


def whisper_model(n_vocab, tokens, tensors, n_mels=1, state=4):
    hp = [n_vocab, 1500, state, 1, 1, 4, state, 1, 1, n_mels, 1]
    out = struct.pack("<I", 0x67676D6C) + struct.pack("<11i", *hp)
    out += struct.pack("<2i", n_mels, 201) + struct.pack("<%df" % (n_mels * 201), *([0.5] * (n_mels * 201)))
    out += struct.pack("<i", len(tokens))
    for t in tokens:
        out += struct.pack("<i", len(t)) + t
    for t in tensors:
        out += t
    return out


def whisper_models():
    toks = [b"a", b"b", b" the", b"\xc3\xa9", b""]
    enc = [whisper_tensor("encoder.conv1.weight", [3, 1, 4]),
           whisper_tensor("encoder.conv1.bias", [1, 4]),
           whisper_tensor("encoder.conv2.weight", [3, 4, 4], 1),
           whisper_tensor("encoder.conv2.bias", [1, 4])]
    write("whisper_model", "en-header", whisper_model(51864, toks, []))
    write("whisper_model", "multilingual-tensors", whisper_model(51865, toks, enc))
    write("whisper_model", "large-v3-bad-shape",
          whisper_model(51866, toks, [whisper_tensor("encoder.conv1.weight", [3, 2, 4])]))
    write("whisper_model", "truncated", whisper_model(51865, toks, enc)[:-7])


# ---- audio_decode: small files in the containers uploads come in ----

def tiny_wav():
    n = 400  # 50 ms at 8 kHz
    pcm = b"".join(struct.pack("<h", (i * 997) % 20000 - 10000) for i in range(n))
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" +
            struct.pack("<I", len(pcm)) + pcm)


def audio():
    write("audio_decode", "s16-8k.wav", tiny_wav())
    formats = [("mp3", ["-c:a", "libmp3lame", "-b:a", "8k"]), ("ogg", ["-c:a", "libvorbis"]),
               ("opus", ["-c:a", "libopus", "-b:a", "6k"]), ("flac", []),
               ("m4a", ["-c:a", "aac", "-b:a", "8k"]), ("webm", ["-c:a", "libopus", "-b:a", "6k"]),
               ("aiff", []), ("f32.wav", ["-c:a", "pcm_f32le", "-ac", "2"])]
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.wav")
        with open(src, "wb") as f:
            f.write(tiny_wav())
        for ext, args in formats:
            out = os.path.join(tmp, "out." + ext)
            cmd = ["ffmpeg", "-v", "error", "-y", "-i", src, "-t", "0.05"] + args
            if ext == "f32.wav":
                cmd += ["-f", "wav"]
            subprocess.run(cmd + [out], check=True)
            with open(out, "rb") as f:
                write("audio_decode", "tiny." + ext, f.read())


# ---- tokenizer: vocabulary byte, flags byte, text ----

def tokenizer():
    texts = [b"Hello world! How are you?", b"  leading and    inner   spaces\n\n\ttabs",
             b"<|im_start|>user\nHi<|im_end|>\n<|endoftext|>", b"<s>[INST] x [/INST]</s>",
             "\u00e9t\u00e9 \u4f60\u597d \U0001f600 \u0645\u0631\u062d\u0628\u0627".encode(),
             b"def f(x):\n    return x**2  # 3.14159 1234567",
             b"\xff\xfe invalid \xc3 utf8 \xed\xa0\x80 \xf4\x90\x80\x80",
             b"I'm you'll WE'VE they're 's 't", b"\x00\x01\x02 control \x7f"]
    for i, t in enumerate(texts):
        write("tokenizer", "text-%d" % i, bytes([i % 17, i % 8]) + t)


# ---- chat_template: flags, template SEP bos SEP eos SEP role SEP content ... ----

def chat_template():
    templates = {
        "chatml": "{% for m in messages %}<|im_start|>{{ m.role }}\\n{{ m.content }}<|im_end|>{% endfor %}",
        "chatml-system": "<|im_start|>system\nYou are Qwen, a helpful assistant.<|im_end|><|im_start|>",
        "qwen3": "<|im_start|>{{ '<think>' }}",
        "llama3": "{{ bos_token }}<|start_header_id|>",
        "llama31": "<|start_header_id|>Cutting Knowledge Date: Dec 2023 date_string = \"26 Jul 2024\"",
        "llama32": "<|start_header_id|>Cutting Knowledge Date strftime_now",
        "phi3": "<|user|><|end|><|assistant|>",
        "phi35": "<|system|><|user|><|end|>",
        "phi4-mini": "'<|' + message['role'] + '|>' <|end|>",
        "mistral-v1": "{{ bos_token }}[INST] x [/INST]",
        "mistral-v3": "[INST] x[/INST]",
        "mistral-tekken": "[INST]x[/INST]",
        "mistral-v7": "[SYSTEM_PROMPT]s[/SYSTEM_PROMPT][INST]",
        "gemma": "{{ bos_token }}<start_of_turn>user",
        "gemma4": "<|turn>user",
        "unknown": "{{ messages }}",
    }
    convo = [b"system", b"Be kind.", b"user", b"Hi", b"assistant", b"<think>x</think>Hello",
             b"developer", b"  note  ", b"user", b""]
    for i, (name, t) in enumerate(templates.items()):
        fields = [t.encode(), b"<s>", b"</s>"] + convo
        write("chat_template", name, bytes([i]) + SEP.join(fields))
    write("chat_template", "bad-role", bytes([3]) + SEP.join([b"", b"", b"", b"tool", b"x"]))


def gguf(build_dir):
    folder = os.path.join(HERE, "corpus", "gguf")
    os.makedirs(folder, exist_ok=True)
    subprocess.run([os.path.join(build_dir, "fuzz-make-seeds"), folder], check=True)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    api_json()
    multipart()
    whisper_models()
    audio()
    tokenizer()
    chat_template()
    gguf(sys.argv[1])


if __name__ == "__main__":
    main()

"""The engine against the numpy reference (tests/reference_whisper.py): the log-mel of jfk.wav,
one encoder pass and decoder logits (KV cache included) of a small random-weight model made by
fluid-synth. Agreement within 1e-4 relative (max abs difference / max abs value) for F32 and
F16 weights. With Q8_0 weights the kernels also round the activations to 8 bits (as ggml
does), so those runs only check the same model is computed (within 5e-2)."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_whisper as ref  # noqa: E402

TOL = 1e-4


def skip(reason):
    print("SKIP:", reason)
    sys.exit(77)


def rel_err(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def check(name, got, want, tol=TOL):
    assert got.shape == want.shape, "%s: shape %s vs %s" % (name, got.shape, want.shape)
    err = rel_err(got, want)
    print("%-8s relative error %.3g" % (name, err))
    assert err < tol, "%s differs from the reference: %.3g" % (name, err)


def check_model(dump, header, wav, audio, wtype, seed, tmp, mel_too):
    tol = TOL if wtype in ("f32", "f16") else 5e-2
    model = os.path.join(tmp, "model.bin")
    # the random "test" model, written as fluid-synth --arch whisper does
    subprocess.run([dump, "synth", header, model, wtype, str(seed)], check=True)
    hp, filters, tensors = ref.load_model(model)
    # <|startoftranscript|> <|en|> <|transcribe|> <|0.00|> then text tokens
    tokens = [50258, 50259, 50359, 50364, 440, 1002, 2121]
    subprocess.run([dump, model, wav, tmp] + [str(t) for t in tokens], check=True)

    def load(name):
        return np.fromfile(os.path.join(tmp, name), dtype="<f4").astype(np.float64)

    mel = ref.log_mel(audio, filters)
    if mel_too:
        check("log-mel", load("mel.f32").reshape(hp["n_mels"], -1), mel)
    enc = ref.encoder(hp, tensors, mel[:, :3000])
    enc_c = load("enc.f32").reshape(hp["n_audio_ctx"], -1)
    check("encoder", enc_c, enc, tol)
    # the decoder gets the engine's encoder output, so its own error is measured
    logits = ref.decoder(hp, tensors, tokens, enc_c)
    check("logits", load("logits.f32").reshape(len(tokens), -1), logits, tol)


def main():
    data = os.environ.get("FLUID_TESTDATA", "")
    build = os.environ.get("FLUID_BUILD_DIR", "")
    wav = os.path.join(data, "jfk.wav")
    header = os.path.join(data, "for-tests-ggml-tiny.bin")
    if not (os.path.exists(wav) and os.path.exists(header)):
        skip("testdata (jfk.wav, for-tests-ggml-tiny.bin) not found")
    dump = os.path.join(build, "whisper-dump")
    if not os.path.exists(dump):
        skip("whisper-dump not built")
    audio = ref.read_wav(wav)
    with tempfile.TemporaryDirectory() as tmp:
        for i, wtype in enumerate(["f16", "f32", "q8_0"]):
            print("--", wtype)
            check_model(dump, header, wav, audio, wtype, 7 + i, tmp, mel_too=i == 0)
    print("ok")


if __name__ == "__main__":
    main()

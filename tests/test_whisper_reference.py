"""The engine against the numpy reference (tests/reference_whisper.py): the log-mel of jfk.wav,
one encoder pass and decoder logits (KV cache included) of a small random-weight model made by
fluid-synth. Agreement within 1e-4 relative (max abs difference / max abs value)."""
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


def check(name, got, want):
    assert got.shape == want.shape, "%s: shape %s vs %s" % (name, got.shape, want.shape)
    err = rel_err(got, want)
    print("%-8s relative error %.3g" % (name, err))
    assert err < TOL, "%s differs from the reference: %.3g" % (name, err)


def main():
    data = os.environ.get("FLUID_TESTDATA", "")
    build = os.environ.get("FLUID_BUILD_DIR", "")
    wav = os.path.join(data, "jfk.wav")
    header = os.path.join(data, "for-tests-ggml-tiny.bin")
    if not (os.path.exists(wav) and os.path.exists(header)):
        skip("testdata (jfk.wav, for-tests-ggml-tiny.bin) not found")
    synth, dump = os.path.join(build, "fluid-synth"), os.path.join(build, "whisper-dump")
    if not (os.path.exists(synth) and os.path.exists(dump)):
        skip("fluid-synth / whisper-dump not built")
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "model.bin")
        subprocess.run([synth, "--arch", "whisper", "--preset", "test", "--type", "f16",
                        "--from", header, "-o", model, "--seed", "7"], check=True)
        hp, filters, tensors = ref.load_model(model)
        # <|startoftranscript|> <|en|> <|transcribe|> <|0.00|> then text tokens
        tokens = [50258, 50259, 50359, 50364, 440, 1002, 2121]
        subprocess.run([dump, model, wav, tmp] + [str(t) for t in tokens], check=True)
        load = lambda name: np.fromfile(os.path.join(tmp, name), dtype="<f4").astype(np.float64)

        mel = ref.log_mel(ref.read_wav(wav), filters)
        got_mel = load("mel.f32").reshape(hp["n_mels"], -1)
        check("log-mel", got_mel, mel)

        enc = ref.encoder(hp, tensors, mel[:, :3000])
        check("encoder", load("enc.f32").reshape(hp["n_audio_ctx"], -1), enc)

        # the decoder sees the engine's encoder output, so its own error is measured
        enc_c = load("enc.f32").reshape(hp["n_audio_ctx"], -1)
        logits = ref.decoder(hp, tensors, tokens, enc_c)
        check("logits", load("logits.f32").reshape(len(tokens), -1), logits)
    print("ok")


if __name__ == "__main__":
    main()

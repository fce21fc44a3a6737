# Shared by the HTTP tests that serve models: synthetic ones made with fluid-synth (random weights,
# real shapes) in $M, the --model-path of the server. Source it after tests/lib/server.sh:
#   source tests/lib/synth_models.sh   (the test is skipped, exit 77, when fluid-synth is not built)
#   synth_tiny; synth_wide; synth_whisper || echo "note: ..."
# Also sets J (curl's flag for a JSON body) and NOEOS (a logit_bias member, see below).

SYNTH="$FLUID_BUILD_DIR/fluid-synth"
[ -x "$SYNTH" ] || { echo "SKIP: $SYNTH is not built"; exit 77; }
M="$WORK/models"
mkdir -p "$M/llm" "$M/whisper"
J='-H Content-Type:application/json'
# fluid-synth's built-in vocabulary ends with 3 special tokens (510-512): banning them keeps
# random weights from ending a generation before max_tokens or a limit does.
NOEOS='"logit_bias":{"510":-100,"511":-100,"512":-100}'

# synth_llm NAME FLUID-SYNTH-FLAGS...: the qwen2 model $M/llm/NAME.gguf (the test fails without it).
synth_llm() {
    local name="$1"; shift
    "$SYNTH" --arch qwen2 "$@" -o "$M/llm/$name.gguf" >/dev/null || { echo "fluid-synth failed"; exit 1; }
}

# "tiny": the small fast model the tests chat with.
synth_tiny() { synth_llm tiny --preset tiny --type f32 --seed 1; }

# "wide": one wide layer, a few ms per token, so a long generation is still running when it is cut.
synth_wide() { synth_llm wide --preset qwen2.5-0.5b --layers 1 --type f16 --seed 2; }

# synth_whisper: $M/whisper/ggml-tiny.bin (served as whisper-tiny) from the test data's tiny Whisper
# model. True, with HAVE_WHISPER=1, when it is made and the test data also has jfk.wav (the audio
# the tests send); false, with HAVE_WHISPER=0, otherwise.
synth_whisper() {
    HAVE_WHISPER=0
    [ -n "${FLUID_TESTDATA:-}" ] && [ -f "$FLUID_TESTDATA/for-tests-ggml-tiny.bin" ] &&
        [ -f "$FLUID_TESTDATA/jfk.wav" ] || return 1
    "$SYNTH" --arch whisper --preset test --type f16 --from "$FLUID_TESTDATA/for-tests-ggml-tiny.bin" \
        -o "$M/whisper/ggml-tiny.bin" >/dev/null 2>&1 || return 1
    HAVE_WHISPER=1
}

#!/usr/bin/env bash
# The per-request limits of fluid-server (so one request cannot take the machine), over curl
# with a synthetic model: each limit answers 400 in OpenAI's error shape naming the parameter and
# the code, the max_tokens limit is also the default, and a prompt longer than the context is
# OpenAI's context_length_exceeded. Flags and their environment variables are both used.
set -u
source "$(dirname "$0")/lib/server.sh"
SYNTH="$FLUID_BUILD_DIR/fluid-synth"
[ -x "$SYNTH" ] || { echo "SKIP: $SYNTH is not built"; exit 77; }
M="$WORK/models"
mkdir -p "$M/llm" "$M/whisper"
"$SYNTH" --arch qwen2 --preset tiny --type f32 --seed 1 -o "$M/llm/tiny.gguf" >/dev/null ||
    { echo "fluid-synth failed"; exit 1; }
HAVE_WHISPER=0
if [ -n "${FLUID_TESTDATA:-}" ] && [ -f "$FLUID_TESTDATA/for-tests-ggml-tiny.bin" ] &&
    [ -f "$FLUID_TESTDATA/jfk.wav" ] &&
    "$SYNTH" --arch whisper --preset test --type f16 --from "$FLUID_TESTDATA/for-tests-ggml-tiny.bin" \
        -o "$M/whisper/ggml-tiny.bin" >/dev/null 2>&1; then
    HAVE_WHISPER=1
else
    echo "note: no synthetic Whisper model or no jfk.wav (test data missing): audio length check skipped"
fi

# The help lists every limit with its variable.
for flag in max-tokens-limit:MAX_TOKENS_LIMIT max-messages:MAX_MESSAGES max-input-kb:MAX_INPUT_KB \
    max-audio-seconds:MAX_AUDIO_SECONDS queue-size:QUEUE_SIZE max-body-mb:MAX_BODY_MB; do
    check "--help lists --${flag%%:*}" bash -c "'$SERVER' --help | grep -q -- '--${flag%%:*} .*\[FLUID_${flag##*:}\]'"
done
"$SERVER" --max-tokens-limit 0 >/dev/null 2>&1; check "--max-tokens-limit 0 refused" [ $? -eq 2 ]

FLUID_MAX_MESSAGES=3 start_server --model-path "$M" --llm-model tiny --whisper-model whisper-tiny \
    --no-warm-up --ctx-size 64 --max-tokens-limit 6 --max-input-kb 1 --max-audio-seconds 5
J='-H Content-Type:application/json'
# fluid-synth's built-in vocabulary ends with 3 special tokens: banning them keeps random weights
# from ending a generation before a limit does.
NOEOS='"logit_bias":{"510":-100,"511":-100,"512":-100}'
HI='"model":"tiny","messages":[{"role":"user","content":"Hi"}]'

error_is() { # error_is STATUS PARAM CODE: the last response is that OpenAI error
    [ "$STATUS" = "$1" ] && [ "$(json "sorted(d['error']) == ['code','message','param','type'] and
        d['error']['type'] == 'invalid_request_error' and d['error']['param'] == '$2' and
        d['error']['code'] == '$3'")" = True ]
}

# max_tokens: the limit caps it, and is the default.
req POST /v1/chat/completions $J -d "{$HI,$NOEOS,\"max_tokens\":7}"
check "max_tokens above the limit 400" error_is 400 max_tokens invalid_value
req POST /v1/chat/completions $J -d "{$HI,$NOEOS,\"max_completion_tokens\":100}"
check "max_completion_tokens above the limit 400" error_is 400 max_completion_tokens invalid_value
req POST /v1/completions $J -d "{\"model\":\"tiny\",\"prompt\":\"a\",$NOEOS,\"max_tokens\":1000}"
check "completions max_tokens above the limit 400" error_is 400 max_tokens invalid_value
req POST /v1/chat/completions $J -d "{$HI,$NOEOS,\"max_tokens\":6}"
check "max_tokens at the limit 200" [ "$STATUS" = 200 ]
req POST /v1/chat/completions $J -d "{$HI,$NOEOS}"
check "no max_tokens: 200" [ "$STATUS" = 200 ]
check "no max_tokens: the limit applies" [ "$(json 'd["usage"]["completion_tokens"] == 6 and d["choices"][0]["finish_reason"] == "length"')" = True ]

# Prompt longer than the context (64 tokens here): OpenAI's error, plain and streamed.
LONG="$(printf 'word %.0s' $(seq 1 100))"
req POST /v1/chat/completions $J -d "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}"
check "long chat prompt 400" error_is 400 messages context_length_exceeded
check "says the context size" grep -q 'maximum context length is 64 tokens' <<<"$BODY"
req POST /v1/completions $J -d "{\"model\":\"tiny\",\"prompt\":\"$LONG\"}"
check "long completion prompt 400" error_is 400 prompt context_length_exceeded
req POST /v1/chat/completions $J -d "{\"model\":\"tiny\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}"
check "long streamed prompt 400" error_is 400 messages context_length_exceeded

# Messages (3 here, from the environment) and request text (1 KiB here).
M4='"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"user","content":"d"}]'
req POST /v1/chat/completions $J -d "{\"model\":\"tiny\",$M4}"
check "too many messages 400" error_is 400 messages array_above_max_length
BIG="$(head -c 1100 /dev/zero | tr '\0' 'x')"
req POST /v1/chat/completions $J -d "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$BIG\"}]}"
check "too much message text 400" error_is 400 messages string_above_max_length
HALF="${BIG:0:600}"
req POST /v1/chat/completions $J -d "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$HALF\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"$HALF\"}]}]}"
check "text of all messages counts 400" error_is 400 messages string_above_max_length
req POST /v1/completions $J -d "{\"model\":\"tiny\",\"prompt\":\"$BIG\"}"
check "too long prompt text 400" error_is 400 prompt string_above_max_length

# Fixed rules of the API: stop (4 strings of 256 bytes at most), n, logit_bias entries.
req POST /v1/chat/completions $J -d "{$HI,\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"
check "5 stop strings 400" error_is 400 stop array_above_max_length
req POST /v1/chat/completions $J -d "{$HI,\"stop\":\"$(head -c 257 /dev/zero | tr '\0' s)\"}"
check "long stop string 400" error_is 400 stop string_above_max_length
req POST /v1/chat/completions $J -d "{$HI,\"n\":2}"
check "n=2 400" error_is 400 n unsupported_value
BIAS="$(/usr/bin/python3 -c 'import json; print(json.dumps({str(i): 1 for i in range(1025)}))')"
req POST /v1/chat/completions $J -d "{$HI,\"logit_bias\":$BIAS}"
check "1025 logit_bias entries 400" error_is 400 logit_bias object_above_max_size
req POST /v1/embeddings $J -d '{"model":"tiny","input":["a","b"]}'
check "embeddings are not served" [ "$STATUS" = 404 ]

# Audio longer than the limit (jfk.wav is 11 s; 5 s allowed here).
if [ "$HAVE_WHISPER" = 1 ]; then
    REQ_TIMEOUT=120 req POST /v1/audio/transcriptions -F "file=@$FLUID_TESTDATA/jfk.wav" -F model=whisper-tiny
    check "long audio 400" error_is 400 file audio_too_long
    # Small but long: 600 KB of 1 kHz 8-bit WAV is 600 s (38 MB of samples once decoded); the
    # decoder stops at the limit.
    /usr/bin/python3 -c 'import sys, wave
w = wave.open(sys.argv[1], "wb"); w.setnchannels(1); w.setsampwidth(1); w.setframerate(1000)
w.writeframes(bytes(128 + (i % 50) for i in range(600000))); w.close()' "$WORK/long.wav"
    REQ_TIMEOUT=120 req POST /v1/audio/transcriptions -F "file=@$WORK/long.wav" -F model=whisper-tiny
    check "small, long audio 400" error_is 400 file audio_too_long
    check "small, long audio: says the limit" grep -q 'longer than 5 seconds' <<<"$BODY"
fi

req GET /health
check "still healthy" [ "$STATUS" = 200 ]
finish

#!/usr/bin/env bash
# The per-request limits of fluid-server (so one request cannot take the machine), over curl
# with a synthetic model: each limit answers 400 in OpenAI's error shape naming the parameter and
# the code, the max_tokens limit is also the default, and a prompt longer than the context is
# OpenAI's context_length_exceeded. Flags and their environment variables are both used.
set -u
source "$(dirname "$0")/lib/server.sh"
source "$(dirname "$0")/lib/synth_models.sh"
synth_tiny
synth_whisper || echo "note: no synthetic Whisper model or no jfk.wav (test data missing): audio length check skipped"

# The help lists every limit with its variable.
for flag in max-tokens-limit:MAX_TOKENS_LIMIT max-messages:MAX_MESSAGES max-input-kb:MAX_INPUT_KB \
    max-audio-seconds:MAX_AUDIO_SECONDS queue-size:QUEUE_SIZE max-body-mb:MAX_BODY_MB; do
    check "--help lists --${flag%%:*}" bash -c "'$SERVER' --help | grep -q -- '--${flag%%:*} .*\[FLUID_${flag##*:}\]'"
done
"$SERVER" --max-tokens-limit 0 >/dev/null 2>&1; check "--max-tokens-limit 0 refused" [ $? -eq 2 ]

FLUID_MAX_MESSAGES=3 start_server --model-path "$M" --llm-model tiny --whisper-model whisper-tiny \
    --no-warm-up --ctx-size 64 --max-tokens-limit 6 --max-input-kb 1 --max-audio-seconds 5
HI='"model":"tiny","messages":[{"role":"user","content":"Hi"}]'

error_is() { # error_is STATUS PARAM CODE: the last response is that OpenAI error
    [ "$STATUS" = "$1" ] && [ "$(json "sorted(d['error']) == ['code','message','param','type'] and
        d['error']['type'] == 'invalid_request_error' and d['error']['param'] == '$2' and
        d['error']['code'] == '$3'")" = True ]
}
rejects() { # rejects NAME PARAM CODE PATH BODY: POSTing the JSON BODY to PATH is that error, status 400
    req POST "$4" $J -d "$5"
    check "$1" error_is 400 "$2" "$3"
}

# max_tokens: the limit caps it, and is the default.
rejects "max_tokens above the limit 400" max_tokens invalid_value /v1/chat/completions \
    "{$HI,$NOEOS,\"max_tokens\":7}"
rejects "max_completion_tokens above the limit 400" max_completion_tokens invalid_value /v1/chat/completions \
    "{$HI,$NOEOS,\"max_completion_tokens\":100}"
rejects "completions max_tokens above the limit 400" max_tokens invalid_value /v1/completions \
    "{\"model\":\"tiny\",\"prompt\":\"a\",$NOEOS,\"max_tokens\":1000}"
req POST /v1/chat/completions $J -d "{$HI,$NOEOS,\"max_tokens\":6}"
check "max_tokens at the limit 200" [ "$STATUS" = 200 ]
req POST /v1/chat/completions $J -d "{$HI,$NOEOS}"
check "no max_tokens: 200" [ "$STATUS" = 200 ]
check "no max_tokens: the limit applies" [ "$(json 'd["usage"]["completion_tokens"] == 6 and d["choices"][0]["finish_reason"] == "length"')" = True ]

# Prompt longer than the context (64 tokens here): OpenAI's error, plain and streamed.
LONG="$(printf 'word %.0s' $(seq 1 100))"
rejects "long chat prompt 400" messages context_length_exceeded /v1/chat/completions \
    "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}"
check "says the context size" grep -q 'maximum context length is 64 tokens' <<<"$BODY"
rejects "long completion prompt 400" prompt context_length_exceeded /v1/completions \
    "{\"model\":\"tiny\",\"prompt\":\"$LONG\"}"
rejects "long streamed prompt 400" messages context_length_exceeded /v1/chat/completions \
    "{\"model\":\"tiny\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"$LONG\"}]}"

# Messages (3 here, from the environment) and request text (1 KiB here).
M4='"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"},{"role":"user","content":"c"},{"role":"user","content":"d"}]'
rejects "too many messages 400" messages array_above_max_length /v1/chat/completions \
    "{\"model\":\"tiny\",$M4}"
BIG="$(head -c 1100 /dev/zero | tr '\0' 'x')"
rejects "too much message text 400" messages string_above_max_length /v1/chat/completions \
    "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$BIG\"}]}"
HALF="${BIG:0:600}"
rejects "text of all messages counts 400" messages string_above_max_length /v1/chat/completions \
    "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"$HALF\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"$HALF\"}]}]}"
rejects "too long prompt text 400" prompt string_above_max_length /v1/completions \
    "{\"model\":\"tiny\",\"prompt\":\"$BIG\"}"

# Fixed rules of the API: stop (4 strings of 256 bytes at most), n, logit_bias entries.
rejects "5 stop strings 400" stop array_above_max_length /v1/chat/completions \
    "{$HI,\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}"
rejects "long stop string 400" stop string_above_max_length /v1/chat/completions \
    "{$HI,\"stop\":\"$(head -c 257 /dev/zero | tr '\0' s)\"}"
rejects "n=2 400" n unsupported_value /v1/chat/completions "{$HI,\"n\":2}"
BIAS="$(/usr/bin/python3 -c 'import json; print(json.dumps({str(i): 1 for i in range(1025)}))')"
rejects "1025 logit_bias entries 400" logit_bias object_above_max_size /v1/chat/completions \
    "{$HI,\"logit_bias\":$BIAS}"
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

#!/usr/bin/env bash
# fluid-server with synthetic models (fluid-synth: random weights, so the text is noise but every
# shape, count and protocol step is real), driven with curl over 127.0.0.1: chat and completions
# (plain, streamed, with usage and logprobs), model list, errors, a client that leaves
# mid-stream, concurrent streams, and the audio routes when a Whisper model can be made.
set -u
source "$(dirname "$0")/lib/server.sh"
source "$(dirname "$0")/lib/synth_models.sh"
synth_tiny
synth_wide
synth_whisper || echo "note: no synthetic Whisper model or no jfk.wav (test data missing): audio checks skipped"

start_server --model-path "$M" --llm-model tiny --whisper-model none --max-models-per-type 2 --keepalive 1
CHAT="$NOEOS"',"model":"tiny","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello"}]}]'

# ---- model list ----
req GET /v1/models
check "models 200" [ "$STATUS" = 200 ]
check "models lists tiny" [ "$(json '[m["id"] for m in d["data"] if m["type"]=="llm"] == ["tiny","wide"]')" = True ]
check "model fields" [ "$(json 'all(m["object"]=="model" and m["created"]>0 and m["size_bytes"]>0 and m["owned_by"] and m["state"] for m in d["data"])')" = True ]
req GET /v1/models/tiny
check "one model" [ "$(json 'd["id"]')" = tiny ]
req GET /v1/models/nope/not/here
check "unknown model 404" [ "$STATUS" = 404 ]
check "model_not_found" [ "$(json 'd["error"]["code"]')" = model_not_found ]

# ---- chat, not streamed ----
req POST /v1/chat/completions $J -d "{$CHAT,\"max_tokens\":5,\"temperature\":0,\"seed\":1}"
check "chat 200" [ "$STATUS" = 200 ]
check "chat shape" [ "$(json 'd["object"]=="chat.completion" and d["id"].startswith("chatcmpl-") and d["model"]=="tiny" and isinstance(d["created"],int) and "system_fingerprint" in d')" = True ]
check "chat choice" [ "$(json '(c:=d["choices"][0]) is not None and c["index"]==0 and c["message"]["role"]=="assistant" and isinstance(c["message"]["content"],str) and c["finish_reason"] in ("stop","length") and "logprobs" in c')" = True ]
check "chat usage" [ "$(json '(u:=d["usage"]) is not None and u["prompt_tokens"]>0 and 0<u["completion_tokens"]<=5 and u["total_tokens"]==u["prompt_tokens"]+u["completion_tokens"]')" = True ]
FIRST="$(json 'd["choices"][0]["message"]["content"]')"
req POST /v1/chat/completions $J -d "{$CHAT,\"max_tokens\":5,\"temperature\":0,\"seed\":1}"
check "greedy is repeatable" [ "$(json 'd["choices"][0]["message"]["content"]')" = "$FIRST" ]
req POST /v1/chat/completions $J -d "{$CHAT,\"max_tokens\":3,\"logprobs\":true,\"top_logprobs\":2}"
check "chat logprobs" [ "$(json '(l:=d["choices"][0]["logprobs"]["content"]) is not None and len(l)>=1 and all(isinstance(t["token"],str) and t["logprob"]<=0 and isinstance(t["bytes"],list) and len(t["top_logprobs"])==2 for t in l)')" = True ]
req POST /v1/chat/completions $J -d "{$CHAT,\"max_completion_tokens\":1}"
check "max_completion_tokens" [ "$(json 'd["usage"]["completion_tokens"]<=1')" = True ]
req POST /v1/chat/completions $J -d '{"model":"missing","messages":[{"role":"user","content":"x"}]}'
check "chat unknown model 404" [ "$STATUS" = 404 ]

# ---- chat, streamed with usage ----
curl -sS -N -m 30 "$BASE/v1/chat/completions" $J \
    -d "{$CHAT,\"max_tokens\":6,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >"$WORK/stream"
check_stream() { # check_stream FILE: the SSE sequence of a chat stream with usage
    /usr/bin/python3 - "$1" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]).read().split("\n") if l.startswith("data: ")]
assert lines[-1] == "data: [DONE]", lines[-1]
chunks = [json.loads(l[6:]) for l in lines[:-1]]
assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
usage = chunks[-1]
assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0, usage
final = chunks[-2]["choices"][0]
assert final["finish_reason"] in ("stop", "length") and final["delta"] == {}, final
assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
assert all(c["usage"] is None for c in chunks[:-1])
PY
}
check "chat stream sequence" check_stream "$WORK/stream"

# ---- legacy completions ----
req POST /v1/completions $J -d "{$NOEOS,\"model\":\"tiny\",\"prompt\":\"Once upon\",\"max_tokens\":4,\"echo\":true,\"logprobs\":2}"
check "completions 200" [ "$STATUS" = 200 ]
check "completions shape" [ "$(json '(c:=d["choices"][0]) is not None and d["object"]=="text_completion" and d["id"].startswith("cmpl-") and c["text"].startswith("Once upon") and len(c["logprobs"]["tokens"])==len(c["logprobs"]["token_logprobs"])==len(c["logprobs"]["text_offset"])>0')" = True ]
curl -sS -N -m 30 "$BASE/v1/completions" $J -d '{"model":"tiny","prompt":["Hi"],"max_tokens":4,"stream":true}' >"$WORK/cstream"
check "completions stream ends" [ "$(grep '^data: ' "$WORK/cstream" | tail -1)" = "data: [DONE]" ]
check "completions chunks" grep -q '"object":"text_completion"' "$WORK/cstream"
req POST /v1/completions $J -d '{"model":"tiny","prompt":"x","suffix":"y"}'
check "suffix 400" [ "$STATUS" = 400 ]

# ---- a client that leaves mid-stream: the work stops, the server goes on ----
START=$(date +%s%N)
curl -sS -N -m 1 "$BASE/v1/completions" $J -d "{$NOEOS,\"model\":\"wide\",\"prompt\":\"x\",\"max_tokens\":4000,\"stream\":true}" >"$WORK/cut" 2>/dev/null
check "cut stream got data" grep -q '^data: {' "$WORK/cut"
IDLE=0
for _ in $(seq 1 30); do
    req GET /health
    [ "$(json 'd["jobs"]["running"]+d["jobs"]["queued"]')" = 0 ] && { IDLE=1; break; }
    sleep 0.1
done
check "abandoned job stopped within 3 s" [ "$IDLE" = 1 ]
check "abandoned request logged" grep -q "POST /v1/completions 200 .*aborted" "$WORK/server.log"
req POST /v1/chat/completions $J -d "{$CHAT,\"max_tokens\":2}"
check "next request served" [ "$STATUS" = 200 ]

# ---- 8 concurrent chat streams, all complete and well-formed ----
PIDS=()
for i in $(seq 1 8); do
    curl -sS -N -m 60 "$BASE/v1/chat/completions" $J \
        -d "{$CHAT,\"max_tokens\":12,\"seed\":$i,\"stream\":true,\"stream_options\":{\"include_usage\":true}}" >"$WORK/s$i" &
    PIDS+=($!)
done
wait "${PIDS[@]}"
for i in $(seq 1 8); do check "concurrent stream $i" check_stream "$WORK/s$i"; done
req GET /health
check "health during/after load" [ "$STATUS" = 200 ]

# ---- audio ----
if [ "$HAVE_WHISPER" = 1 ]; then
    stop_server
    start_server --model-path "$M" --llm-model none --whisper-model whisper-tiny
    # A random-weight model never ends a window early and the server decodes as OpenAI does
    # (beam search, temperature fallback): seconds of CPU per request, more on a loaded machine.
    REQ_TIMEOUT=300
    A="$FLUID_TESTDATA/jfk.wav"
    req POST /v1/audio/transcriptions -F "file=@$A" -F model=whisper-1
    check "transcription json" [ "$STATUS" = 200 ]
    check "json has text" [ "$(json 'isinstance(d["text"],str)')" = True ]
    req POST /v1/audio/transcriptions -F "file=@$A" -F response_format=text
    check "transcription text" [ "$STATUS" = 200 ]
    check "text is plain" grep -qi '^Content-Type: text/plain' <<<"$HEADERS"
    req POST /v1/audio/transcriptions -F "file=@$A" -F response_format=srt
    check "srt" bash -c '[ "$0" = 200 ] && { [ -z "$1" ] || grep -Eq "^[0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} --> [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}$" <<<"$1"; }' "$STATUS" "$BODY"
    req POST /v1/audio/transcriptions -F "file=@$A" -F response_format=vtt
    check "vtt" bash -c '[ "$0" = 200 ] && head -1 <<<"$1" | grep -q "^WEBVTT"' "$STATUS" "$BODY"
    req POST /v1/audio/transcriptions -F "file=@$A" -F response_format=verbose_json -F language=en \
        -F 'timestamp_granularities[]=segment' -F 'timestamp_granularities[]=word'
    check "verbose_json" [ "$(json 'd["task"]=="transcribe" and d["duration"]>10 and d["language"]=="english" and isinstance(d["words"],list) and all(set(s)>={"id","seek","start","end","text","tokens","temperature","avg_logprob","compression_ratio","no_speech_prob"} for s in d["segments"])')" = True ]
    curl -sS -N -m 300 "$BASE/v1/audio/transcriptions" -F "file=@$A" -F stream=true >"$WORK/astream"
    check "transcription stream done" bash -c "grep '^data: ' '$WORK/astream' | tail -1 | grep -q '\"type\":\"transcript.text.done\"'"
    req POST /v1/audio/translations -F "file=@$A" -F model=whisper-1
    check "translation json" [ "$STATUS" = 200 ]
    APIDS=()
    for i in 1 2; do
        curl -sS -m 300 -o "$WORK/t$i" -w '%{http_code}' "$BASE/v1/audio/transcriptions" -F "file=@$A" >"$WORK/tc$i" &
        APIDS+=($!)
    done
    wait "${APIDS[@]}"
    for i in 1 2; do check "concurrent transcription $i" [ "$(cat "$WORK/tc$i")" = 200 ]; done
    req POST /v1/audio/transcriptions -F "file=@$WORK/server.log;filename=x.wav"
    check "not audio 400" [ "$STATUS" = 400 ]
fi

stop_server
check "clean exit" [ "$SERVER_STATUS" = 0 ]
finish

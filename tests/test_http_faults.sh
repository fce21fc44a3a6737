#!/usr/bin/env bash
# Fault tests: fluid-server keeps serving everyone else when clients misbehave and when the
# process is told to stop. Clients that leave at every stage (jobs of a gone client are
# cancelled), slow clients (slowloris), oversize headers and URLs, broken chunked bodies, and
# SIGTERM/SIGINT during generation (graceful drain, exit 0). After each fault the server must
# still answer /health and a normal request; in the sanitizer build a clean exit 0 also means
# LeakSanitizer found no leak. Models come from fluid-synth (random weights, real shapes).
set -u
source "$(dirname "$0")/lib/server.sh"
source "$(dirname "$0")/lib/synth_models.sh"
FC="/usr/bin/python3 $(dirname "$0")/tools/fault_client.py"
synth_tiny
synth_wide
synth_whisper || echo "note: no synthetic Whisper model (test data missing): the transcription cut is skipped"

LONG="{$NOEOS,\"model\":\"wide\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3000,\"stream\":true}"
SHORT="{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":2}"

# jobs_idle [TENTHS]: true once /health reports no running or queued job (3 s by default).
jobs_idle() {
    for _ in $(seq 1 "${1:-30}"); do
        req GET /health
        [ "$STATUS" = 200 ] && [ "$(json 'd["jobs"]["running"]+d["jobs"]["queued"]')" = 0 ] && return 0
        sleep 0.1
    done
    return 1
}
# still_serving NAME: /health answers and a normal chat request succeeds.
still_serving() {
    req GET /health
    check "$1: health" [ "$STATUS" = 200 ]
    REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$SHORT"
    check "$1: next request served" [ "$STATUS" = 200 ]
}
json_of() { # json_of FILE EXPR
    /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}
# http_request FILE METHOD PATH CONTENT-TYPE BODY-FILE: a complete HTTP/1.1 request in FILE.
http_request() {
    local out="$1" method="$2" path="$3" type="$4" body="$5"
    printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n' \
        "$method" "$path" "$type" "$(stat -c %s "$body")" >"$out"
    cat "$body" >>"$out"
}

start_server --model-path "$M" --llm-model tiny --whisper-model none --max-models-per-type 2 \
    --client-timeout 3 --max-connections 24 --keepalive 1 --shutdown-timeout 2

# ---- 1. clients that leave at every stage ----
printf '%s' "$LONG" >"$WORK/long.json"
http_request "$WORK/long.req" POST /v1/chat/completions application/json "$WORK/long.json"
$FC "$PORT" cut "$WORK/long.req" 30 # inside the request line / headers
still_serving "gone during headers"
HEAD_LEN=$(($(stat -c %s "$WORK/long.req") - $(stat -c %s "$WORK/long.json")))
$FC "$PORT" cut "$WORK/long.req" $((HEAD_LEN + 20)) # headers complete, body cut short
still_serving "gone during body"
check "gone during body: no job left" jobs_idle

head -c 300000 /dev/urandom >"$WORK/upload.bin"
{
    printf -- '--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
    printf -- '--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    cat "$WORK/upload.bin"
    printf -- '\r\n--XyZ--\r\n'
} >"$WORK/multipart.body"
http_request "$WORK/multipart.req" POST /v1/audio/transcriptions 'multipart/form-data; boundary=XyZ' "$WORK/multipart.body"
$FC "$PORT" cut "$WORK/multipart.req" 150000 # half of a multipart upload
still_serving "gone during multipart upload"

# Mid-stream: a chat stream cut after its first chunks; the job stops, the next one runs.
curl -sS -N -m 1.5 "$BASE/v1/chat/completions" $J -d "$LONG" >"$WORK/cut" 2>/dev/null
check "gone mid-stream: got chunks" grep -q '^data: {' "$WORK/cut"
check "gone mid-stream: job cancelled" jobs_idle
still_serving "gone mid-stream"

# Right after the response headers: the stream's job is cancelled without a byte of body read.
check "gone after headers: status 200" [ "$($FC "$PORT" after-headers "$WORK/long.req")" = 200 ]
check "gone after headers: job cancelled" jobs_idle
still_serving "gone after headers"

# A streamed transcription whose client leaves after its first events.
if [ "$HAVE_WHISPER" = 1 ]; then
    curl -sS -N -m 3 "$BASE/v1/audio/transcriptions" -F "file=@$FLUID_TESTDATA/jfk.wav" \
        -F model=whisper-tiny -F stream=true >/dev/null 2>&1
    check "gone mid-transcription: job cancelled" jobs_idle 100
    still_serving "gone mid-transcription"
fi

# A non-streamed request whose client leaves while it runs.
printf '%s' "${LONG/\"stream\":true/\"stream\":false}" >"$WORK/plain.json"
curl -sS -m 1 "$BASE/v1/chat/completions" $J -d @"$WORK/plain.json" >/dev/null 2>&1
check "gone while waiting for a plain answer: job cancelled" jobs_idle
still_serving "gone while waiting for a plain answer"

# ---- 2. slow clients ----
# Slowloris: connections that send their headers, or their body, one byte every 0.5 s. Fewer of
# them than --max-connections: the others are served meanwhile, and each slow one is cut once
# --client-timeout (3 s) passes without a complete request (by MHD's own timeout or, whichever
# comes first, by the server's watchdog, which counts from the request's first byte).
for what in headers body; do
    $FC "$PORT" slow 10 0.5 9 "$what" >"$WORK/slow_$what" &
    SLOW=$!
    sleep 1
    T0=$(date +%s%N)
    REQ_TIMEOUT=5 req GET /health
    check "slow $what: health served beside slow clients" [ "$STATUS" = 200 ]
    REQ_TIMEOUT=10 req POST /v1/chat/completions $J -d "$SHORT"
    check "slow $what: chat served beside slow clients" [ "$STATUS" = 200 ]
    check "slow $what: served quickly" [ $((($(date +%s%N) - T0) / 1000000)) -lt 3000 ]
    wait "$SLOW"
    check "slow $what: every slow client cut by the timeout" \
        [ "$(json_of "$WORK/slow_$what" 'd["closed"]==10 and d["open"]==0 and d["latest_close_s"]<6')" = True ]
done
# More slow clients than --max-connections (24): the server stays up, the excess waits or is
# refused, and a normal client gets in once the timeout has freed the slots.
$FC "$PORT" slow 30 0.5 9 body >"$WORK/slow_many" &
SLOW=$!
sleep 1
SERVED=0
for _ in $(seq 1 10); do
    curl -sS -m 8 -o /dev/null -w '%{http_code}' "$BASE/health" 2>/dev/null | grep -q 200 && { SERVED=1; break; }
    sleep 0.5
done
check "max-connections: a normal client served within the client timeout" [ "$SERVED" = 1 ]
wait "$SLOW"
check "max-connections: no slow client left open" [ "$(json_of "$WORK/slow_many" 'd["open"]==0')" = True ]
still_serving "after slow clients"

# ---- 3. oversize headers and URLs, broken chunked bodies ----
{ printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: '; head -c 100000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } >"$WORK/bighdr.req"
check "oversize header: 431" [ "$($FC "$PORT" raw "$WORK/bighdr.req")" = 431 ]
{ printf 'GET /v1/models/'; head -c 100000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'; } >"$WORK/bigurl.req"
check "oversize URL: 414" [ "$($FC "$PORT" raw "$WORK/bigurl.req")" = 414 ]
{ for i in $(seq 1 2000); do printf 'X-H%d: v\r\n' "$i"; done; } >"$WORK/many"
{ printf 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n'; cat "$WORK/many"; printf '\r\n'; } >"$WORK/manyhdr.req"
check "too many headers: 431" [ "$($FC "$PORT" raw "$WORK/manyhdr.req")" = 431 ]
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{"a":1}\r\n0\r\n\r\n' >"$WORK/chunk1.req"
R="$($FC "$PORT" raw "$WORK/chunk1.req")"
check "broken chunk size: 400 or cut" bash -c '[ "$0" = 400 ] || [ "$0" = closed ]' "$R"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":1}\r\n0\r\n\r\n' >"$WORK/chunk2.req"
R="$($FC "$PORT" raw "$WORK/chunk2.req")"
check "chunk longer than its size: 400 or cut" bash -c '[ "$0" = 400 ] || [ "$0" = closed ]' "$R"
printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nab' >"$WORK/chunk3.req"
R="$($FC "$PORT" raw "$WORK/chunk3.req")"
check "huge chunk size: 413, 400 or cut" bash -c '[ "$0" = 413 ] || [ "$0" = 400 ] || [ "$0" = closed ]' "$R"
still_serving "after oversize and broken requests"

# ---- 4. a model file deleted or truncated while loaded ----
# Deleting a mapped file is harmless (the mapping keeps it). Truncating it would kill the
# process with SIGBUS on the next read of a lost page: the server survives, the request fails
# with 500 "model file changed on disk", the model is unloaded, the next request loads the file
# as it now is (a clean error while it is broken), and a restored file serves again.
WIDE2="{$NOEOS,\"model\":\"wide\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}"
cp "$M/llm/wide.gguf" "$WORK/wide.orig"
REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$WIDE2"
check "model loaded" [ "$STATUS" = 200 ]
truncate -s 65536 "$M/llm/wide.gguf"
REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$WIDE2"
check "truncated while loaded: 500" [ "$STATUS" = 500 ]
check "truncated while loaded: says why" grep -q 'model file changed on disk' <<<"$BODY"
check "truncated while loaded: OpenAI error shape" [ "$(json '"error" in d and all(k in d["error"] for k in ("message","type","param","code"))')" = True ]
REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$WIDE2"
check "truncated file: clean error on reload" bash -c '[ "$0" -ge 400 ] && [ "$0" -lt 600 ]' "$STATUS"
check "truncated file: error shape" [ "$(json '"error" in d')" = True ]
still_serving "after a truncated model"
cp "$WORK/wide.orig" "$M/llm/wide.gguf"
REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$WIDE2"
check "restored file: served again" [ "$STATUS" = 200 ]
# Truncated in the middle of a stream: the stream ends with an error event.
curl -sS -N -m 30 "$BASE/v1/chat/completions" $J -d "$LONG" >"$WORK/trunc_stream" 2>/dev/null &
STREAM_PID=$!
sleep 1
truncate -s 65536 "$M/llm/wide.gguf"
wait "$STREAM_PID"
check "truncated mid-stream: error event" \
    bash -c "grep '^data: ' '$WORK/trunc_stream' | tail -1 | grep -q 'model file changed on disk'"
cp "$WORK/wide.orig" "$M/llm/wide.gguf"
REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$WIDE2"
check "restored after mid-stream truncation: served" [ "$STATUS" = 200 ]
check "damage logged" grep -q 'unloading wide (its file changed on disk)' "$WORK/server.log"
still_serving "after a truncated model mid-stream"
rm "$M/llm/wide.gguf" # (cp above wrote into the mapped file, so this is the loaded one)
REQ_TIMEOUT=20 req POST /v1/chat/completions $J -d "$WIDE2"
check "deleted while loaded: still served" [ "$STATUS" = 200 ]
cp "$WORK/wide.orig" "$M/llm/wide.gguf"

# ---- 6. SIGTERM and SIGINT during generation ----
# A long stream and a short one run when SIGTERM arrives, with a 2 s grace period: the short
# one ends with [DONE], the long one is cut cleanly with an error event, new clients are
# refused, and the process exits 0 within the grace period (plus the cancel step).
curl -sS -N -m 30 "$BASE/v1/chat/completions" $J -d "$LONG" >"$WORK/term_long" 2>/dev/null &
LONG_PID=$!
sleep 1
curl -sS -N -m 30 "$BASE/v1/chat/completions" $J \
    -d "{$NOEOS,\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":3,\"stream\":true}" \
    >"$WORK/term_short" 2>/dev/null &
SHORT_PID=$!
sleep 0.3
stop_with() { # stop_with SIGNAL: sends it, waits for the exit; sets EXIT_STATUS and EXIT_MS
    local t0
    t0=$(date +%s%N)
    kill -"$1" "$SERVER_PID"
    sleep 0.3
    REFUSED=0
    curl -sS -m 2 "$BASE/health" >/dev/null 2>&1 || REFUSED=1
    wait "$SERVER_PID"
    EXIT_STATUS=$?
    EXIT_MS=$((($(date +%s%N) - t0) / 1000000))
    SERVER_PID=""
}
stop_with TERM
wait "$LONG_PID" "$SHORT_PID"
check "SIGTERM: exit 0 (and no leak under ASan)" [ "$EXIT_STATUS" = 0 ]
check "SIGTERM: exits within the grace period" [ "$EXIT_MS" -lt 12000 ]
check "SIGTERM: new clients refused" [ "$REFUSED" = 1 ]
check "SIGTERM: the short stream finished" [ "$(grep '^data: ' "$WORK/term_short" | tail -1)" = "data: [DONE]" ]
check "SIGTERM: the long stream ended with an error event" \
    bash -c "grep '^data: ' '$WORK/term_long' | tail -1 | grep -q '\"error\"'"
check "SIGTERM: drain logged" grep -q 'grace period over: cancelling 1 request' "$WORK/server.log"

# SIGINT with nothing running: immediate clean exit. With a stream that ends within the grace
# period: the stream completes with [DONE].
start_server --model-path "$M" --llm-model tiny --whisper-model none --shutdown-timeout 20
curl -sS -N -m 30 "$BASE/v1/chat/completions" $J \
    -d "{$NOEOS,\"model\":\"wide\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":400,\"stream\":true}" \
    >"$WORK/int_stream" 2>/dev/null &
STREAM_PID=$!
# Signal as soon as the first chunk has arrived: on an idle machine a fixed sleep could
# outlast the whole stream.
for _ in $(seq 200); do grep -q '^data: ' "$WORK/int_stream" 2>/dev/null && break; sleep 0.05; done
stop_with INT
wait "$STREAM_PID"
check "SIGINT: exit 0" [ "$EXIT_STATUS" = 0 ]
check "SIGINT: the stream was in flight" grep -q "received SIGINT: finishing 1 request" "$WORK/server.log"
check "SIGINT: the running stream completed" [ "$(grep '^data: ' "$WORK/int_stream" | tail -1)" = "data: [DONE]" ]

# ---- 5. the disk full during a download ----
# The server runs under a file-size limit (RLIMIT_FSIZE, 300 KB) smaller than the model the
# fake Hub serves (about 600 KB): writing the .part fails with EFBIG (SIGXFSZ is ignored), the
# request fails with 507 and a clear error in the OpenAI shape, the .part is never taken for a model,
# the server goes on serving, and once the limit is gone the same request resumes the download
# and succeeds.
mkdir -p "$WORK/hub/owner/repo"
cp "$M/llm/tiny.gguf" "$WORK/hub/owner/repo/big.gguf"
HUB_IN="$WORK/hub.in"
mkfifo "$HUB_IN"
/usr/bin/python3 "$(dirname "$0")/tools/fake_hub.py" "$WORK/hub" <"$HUB_IN" >"$WORK/hub.port" 2>"$WORK/hub.log" &
HUB_PID=$!
exec 9>"$HUB_IN" # the hub serves while this stays open
for _ in $(seq 1 50); do [ -s "$WORK/hub.port" ] && break; sleep 0.1; done
HUB_PORT="$(head -1 "$WORK/hub.port")"
REAL_SERVER="$SERVER"
printf '#!/bin/bash\nulimit -f 300\nexec "%s" "$@"\n' "$REAL_SERVER" >"$WORK/limited.sh"
chmod +x "$WORK/limited.sh"
SERVER="$WORK/limited.sh"
export HF_ENDPOINT="http://127.0.0.1:$HUB_PORT"
start_server --model-path "$M" --llm-model tiny --whisper-model none
HUBCHAT='{"model":"owner/repo/big.gguf","messages":[{"role":"user","content":"hi"}],"max_tokens":2}'
REQ_TIMEOUT=60 req POST /v1/chat/completions $J -d "$HUBCHAT"
check "disk full: 507 Insufficient Storage" [ "$STATUS" = 507 ]
check "disk full: says why" grep -q 'not enough disk space' <<<"$BODY"
check "disk full: OpenAI error shape" [ "$(json 'sorted(d["error"]) == ["code","message","param","type"] and d["error"]["code"] == "insufficient_storage" and d["error"]["type"] == "server_error"')" = True ]
check "disk full: the partial file is kept aside" [ -s "$M/llm/owner/repo/big.gguf.part" ]
check "disk full: no model file" [ ! -e "$M/llm/owner/repo/big.gguf" ]
still_serving "disk full"
# A client that leaves while its job waits for the model (here: a slow download): the job is
# dropped from the queue at once, the download goes on.
cp "$M/llm/tiny.gguf" "$WORK/hub/owner/repo/slow.gguf"
curl -sS -o /dev/null "http://127.0.0.1:$HUB_PORT/_control?path=owner/repo/slow.gguf&mode=slow&rate=20000"
curl -sS -m 1.5 -o /dev/null "$BASE/v1/chat/completions" $J \
    -d '{"model":"owner/repo/slow.gguf","messages":[{"role":"user","content":"hi"}],"max_tokens":2}' 2>/dev/null
check "gone while waiting for its model: job dropped" jobs_idle 20
req GET /v1/models/owner/repo/slow
check "gone while waiting for its model: the download goes on" [ "$(json 'd["state"]')" = downloading ]
still_serving "gone while waiting for its model"
stop_server
check "disk full: clean exit" [ "$SERVER_STATUS" = 0 ]
SERVER="$REAL_SERVER"
start_server --model-path "$M" --llm-model tiny --whisper-model none
REQ_TIMEOUT=60 req POST /v1/chat/completions $J -d "$HUBCHAT"
check "space again: the download completes and serves" [ "$STATUS" = 200 ]
check "space again: the file is whole" cmp -s "$M/llm/owner/repo/big.gguf" "$WORK/hub/owner/repo/big.gguf"
check "space again: no .part left" [ ! -e "$M/llm/owner/repo/big.gguf.part" ]
check "space again: resumed, not restarted" grep -q "bytes=" <<<"$(curl -sS "http://127.0.0.1:$HUB_PORT/_stats")"
stop_server
check "after the download: clean exit" [ "$SERVER_STATUS" = 0 ]
exec 9>&-
wait "$HUB_PID" 2>/dev/null

finish

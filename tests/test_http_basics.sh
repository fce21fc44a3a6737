#!/usr/bin/env bash
# fluid-server over real sockets with curl, without any model: routes, errors, limits, auth,
# CORS, flags. Every request goes to 127.0.0.1 and is bounded in time.
set -u
source "$(dirname "$0")/lib/server.sh"
mkdir -p "$WORK/models"

# Flags: bad values exit 2 with a message; --version and --help exit 0.
"$SERVER" --port nope >/dev/null 2>"$WORK/err"; check "bad --port exits 2" [ $? -eq 2 ]
check "bad --port says why" grep -q -- "--port" "$WORK/err"
FLUID_MAX_BODY_MB=0 "$SERVER" >/dev/null 2>&1; check "bad env exits 2" [ $? -eq 2 ]
check "--version" bash -c "'$SERVER' --version | grep -q '^fluid-server '"
check "--help groups" bash -c "'$SERVER' --help | grep -q '^Models:'"

start_server --model-path "$WORK/models" --no-warm-up --llm-model none --whisper-model none \
    --max-body-mb 1

req GET /
check "GET / 200" [ "$STATUS" = 200 ]
check "GET / names" [ "$(json 'd["name"]')" = "Fluid Server" ]
check "request id header" grep -qi '^X-Request-Id: req_' <<<"$HEADERS"

req GET /health
check "health 200" [ "$STATUS" = 200 ]
check "health status" grep -Eq '^(starting|ready|degraded)$' <<<"$(json 'd["status"]')"
check "health runtimes" [ "$(json '"llm" in d["runtimes"] and "whisper" in d["runtimes"]')" = True ]

req GET /v1/models
check "models 200" [ "$STATUS" = 200 ]
check "models list" [ "$(json 'd["object"]')" = list ]

req GET /openapi.json
check "openapi 200" [ "$STATUS" = 200 ]
check "openapi paths" [ "$(json 'all(p in d["paths"] for p in ["/v1/chat/completions","/v1/audio/transcriptions","/v1/models/{model}","/health"])')" = True ]
req GET /docs
check "docs html" grep -q '<!doctype html>' <<<"$BODY"
check "docs has no outside resources" bash -c "! grep -q 'https\?://' <<<\"\$0\"" "$BODY"

# Errors in the OpenAI shape.
is_error() { [ "$(json '"error" in d and all(k in d["error"] for k in ("message","type","param","code"))')" = True ]; }
req GET /v1/nothing
check "unknown route 404" [ "$STATUS" = 404 ]; check "404 shape" is_error
req DELETE /v1/chat/completions
check "wrong method 405" [ "$STATUS" = 405 ]; check "405 shape" is_error
check "405 Allow" grep -qi '^Allow: POST, OPTIONS' <<<"$HEADERS"
req POST /v1/chat/completions -H 'Content-Type: application/json' --data-binary '{"messages":'
check "bad JSON 400" [ "$STATUS" = 400 ]; check "bad JSON shape" is_error
req POST /v1/chat/completions -H 'Content-Type: application/json' -d '{"messages":[{"role":"user","content":"x"}],"temperature":9}'
check "out of range 400" [ "$STATUS" = 400 ]; check "names param" [ "$(json 'd["error"]["param"]')" = temperature ]
req POST /v1/chat/completions -H 'Content-Type: text/plain' -d 'hello'
check "wrong type 415" [ "$STATUS" = 415 ]
head -c $((2 * 1024 * 1024)) /dev/zero >"$WORK/big"
req POST /v1/chat/completions -H 'Content-Type: application/json' --data-binary @"$WORK/big"
check "too large 413" [ "$STATUS" = 413 ]; check "413 shape" is_error
req POST /v1/chat/completions -H 'Content-Type: application/json' -H 'Transfer-Encoding: chunked' --data-binary @"$WORK/big"
check "too large chunked 413" [ "$STATUS" = 413 ]
req POST /v1/audio/transcriptions -F 'model=whisper-1'
check "transcription without file 400" [ "$STATUS" = 400 ]; check "names file" [ "$(json 'd["error"]["param"]')" = file ]
req POST /v1/audio/transcriptions -H 'Content-Type: multipart/form-data; boundary=zz' --data-binary $'--zz\r\nbroken'
check "broken multipart 400" [ "$STATUS" = 400 ]
req POST /v1/embeddings -H 'Content-Type: application/json' -d '{"input":"x","model":"m"}'
check "embeddings 404" [ "$STATUS" = 404 ]; check "embeddings says why" grep -q 'not available' <<<"$BODY"
req GET '/v1/models/..%2F..%2Fetc%2Fpasswd'
check "traversal id 404" [ "$STATUS" = 404 ]

# CORS: allow-all by default, and preflight.
req OPTIONS /v1/chat/completions -H 'Origin: http://app.test' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type'
check "preflight 204" [ "$STATUS" = 204 ]
check "preflight origin" grep -qi '^Access-Control-Allow-Origin: \*' <<<"$HEADERS"
check "preflight headers" grep -qi '^Access-Control-Allow-Headers: authorization, content-type' <<<"$HEADERS"

# The server still answers after all that.
req GET /health
check "still healthy" [ "$STATUS" = 200 ]
stop_server
check "SIGTERM exits 0" [ "$SERVER_STATUS" = 0 ]

# API key on: /v1 needs it, /health does not; CORS restricted to one origin.
FLUID_API_KEY=sekret start_server --model-path "$WORK/models" --no-warm-up --llm-model none \
    --whisper-model none --cors-origin http://ok.test
req GET /v1/models
check "no key 401" [ "$STATUS" = 401 ]; check "401 shape" is_error
check "401 code" [ "$(json 'd["error"]["code"]')" = invalid_api_key ]
req GET /v1/models -H 'Authorization: Bearer wrong'
check "wrong key 401" [ "$STATUS" = 401 ]
req GET /v1/models -H 'Authorization: Bearer sekret'
check "right key 200" [ "$STATUS" = 200 ]
req POST /v1/chat/completions -H 'Content-Type: application/json' -d '{}'
check "key checked before body" [ "$STATUS" = 401 ]
req GET /health
check "health open" [ "$STATUS" = 200 ]
req GET /health -H 'Origin: http://ok.test'
check "listed origin allowed" grep -qi '^Access-Control-Allow-Origin: http://ok.test' <<<"$HEADERS"
req GET /health -H 'Origin: http://evil.test'
check "other origin not allowed" bash -c "! grep -qi '^Access-Control-Allow-Origin' <<<\"\$0\"" "$HEADERS"
check "log has request lines" grep -q 'req_[0-9]* GET /health 200' "$WORK/server.log"
check "log never shows the key" bash -c "! grep -q sekret '$WORK/server.log'"

finish

#!/usr/bin/env bash
# No secret in the logs: fluid-server at --log-level debug with an API key and HF_TOKEN set,
# requests with no, wrong and right keys (header and query string), a download from a gated
# repository of the fake Hub (tests/tools/fake_hub.py) that needs the token, and one that fails;
# then neither the key nor the token may appear in anything the server printed.
set -u
source "$(dirname "$0")/lib/server.sh"
PY=/usr/bin/python3
HUB_SCRIPT="${FLUID_SOURCE_DIR:?}/tests/tools/fake_hub.py"
[ -x "$PY" ] && [ -f "$HUB_SCRIPT" ] || { echo "SKIP: python3 or fake_hub.py missing"; exit 77; }

KEY="sk-local-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TOKEN="hf_$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$WORK/models" "$WORK/hub/acme/private" "$WORK/hub/acme/other"
head -c 4096 /dev/urandom >"$WORK/hub/acme/private/model.gguf"
printf '%s' "$TOKEN" >"$WORK/hub/acme/private/.gated"
printf '%s' "another-token" >"$WORK/hub/acme/other/.gated"
head -c 2048 /dev/urandom >"$WORK/hub/acme/other/model.gguf"

# The fake Hub runs until its stdin closes.
coproc HUB { "$PY" "$HUB_SCRIPT" "$WORK/hub"; }
HUB_PID=$HUB_PID
trap 'exec {HUB[1]}>&-; wait "$HUB_PID" 2>/dev/null; cleanup' EXIT
read -r -t 10 HUB_PORT <&"${HUB[0]}" || { echo "fake hub did not start"; exit 1; }

HF_TOKEN="$TOKEN" HF_ENDPOINT="http://127.0.0.1:$HUB_PORT" FLUID_API_KEY="$KEY" \
    start_server --model-path "$WORK/models" --no-warm-up --llm-model none --whisper-model none \
    --log-level debug

req GET /v1/models
check "no key 401" [ "$STATUS" = 401 ]
req GET /v1/models -H "Authorization: Bearer ${KEY}x"
check "wrong key 401" [ "$STATUS" = 401 ]
req GET "/v1/models?api_key=$KEY&token=$TOKEN"
check "key in the query string is not a key" [ "$STATUS" = 401 ]
req GET /v1/models -H "Authorization: Bearer $KEY"
check "right key 200" [ "$STATUS" = 200 ]
req GET "/v1/nothing?token=$TOKEN" -H "Authorization: Bearer $KEY"
check "unknown path 404" [ "$STATUS" = 404 ]
req POST /v1/chat/completions -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"user\":\"$KEY\"}"
check "chat unknown model 404" [ "$STATUS" = 404 ]

# A gated download that needs HF_TOKEN, and one the token cannot open.
REQ_TIMEOUT=60 req POST /v1/models/download -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"model":"acme/private/model.gguf","stream":true}'
check "gated download done" grep -q '"state":"done"' <<<"$BODY"
check "downloaded file" [ -s "$WORK/models/llm/acme/private/model.gguf" ]
REQ_TIMEOUT=60 req POST /v1/models/download -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"model":"acme/other/model.gguf","stream":true}'
check "refused download failed" grep -q '"state":"failed"' <<<"$BODY"
check "refused download says why" grep -q 'access denied' <<<"$BODY"
check "the token reached the Hub" bash -c "curl -s 'http://127.0.0.1:$HUB_PORT/_stats' | grep -q 'Bearer $TOKEN'"
stop_server

LOGS="$WORK/server.out $WORK/server.log"
check "debug lines were written" grep -q ' DEBUG ' "$WORK/server.log"
check "the downloads were logged" grep -q 'acme/private/model' "$WORK/server.log"
check "no API key in the logs" bash -c "! grep -F -q -- '$KEY' $LOGS"
check "no HF token in the logs" bash -c "! grep -F -q -- '$TOKEN' $LOGS"

# URLs: an HF_ENDPOINT with user:password@, and redirects to signed CDN URLs (the signature in
# the query string), one download that succeeds and one the CDN refuses (the URL is in the
# error): neither the password nor the signature may appear in the logs or the answers.
PASSWORD="pw$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SIGNATURE="sig$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$WORK/hub/acme/public"
head -c 4096 /dev/urandom >"$WORK/hub/acme/public/model.gguf"
head -c 4096 /dev/urandom >"$WORK/hub/acme/public/expired.gguf"
curl -sS -o /dev/null "http://127.0.0.1:$HUB_PORT/_control?sign=$SIGNATURE"
curl -sS -o /dev/null "http://127.0.0.1:$HUB_PORT/_control?path=acme/public/expired.gguf&mode=cdn403"
HF_ENDPOINT="http://hubuser:$PASSWORD@127.0.0.1:$HUB_PORT" start_server --model-path "$WORK/models" \
    --no-warm-up --llm-model none --whisper-model none --log-level debug
REQ_TIMEOUT=60 req POST /v1/models/download -H 'Content-Type: application/json' \
    -d '{"model":"acme/public/model.gguf","stream":true}'
check "signed download done" grep -q '"state":"done"' <<<"$BODY"
ANSWERS="$BODY"
REQ_TIMEOUT=60 req POST /v1/models/download -H 'Content-Type: application/json' \
    -d '{"model":"acme/public/expired.gguf","stream":true}'
check "refused CDN download failed" grep -q '"state":"failed"' <<<"$BODY"
check "the CDN refusal says so" grep -q "by the server the Hub redirected to" <<<"$BODY"
check "the error names the CDN URL" grep -q "localhost:$HUB_PORT/cdn/acme/public/expired.gguf" <<<"$BODY"
ANSWERS="$ANSWERS$BODY"
check "the CDN got signed URLs" bash -c "curl -s 'http://127.0.0.1:$HUB_PORT/_stats' | grep -q '\"cdn_signed\": [1-9]'"
stop_server
check "the endpoint was logged without its password" \
    grep -q "from http://127.0.0.1:$HUB_PORT/acme/public/resolve/main/model.gguf" "$WORK/server.log"
check "the CDN error was logged" grep -q 'cdn/acme/public/expired.gguf' "$WORK/server.log"
check "no endpoint password in the logs" bash -c "! grep -F -q -- '$PASSWORD' $LOGS"
check "no CDN signature in the logs" bash -c "! grep -F -q -- '$SIGNATURE' $LOGS"
check "no endpoint password or signature in the answers" \
    bash -c "! grep -F -q -e '$PASSWORD' -e '$SIGNATURE' <<<\"\$0\"" "$ANSWERS"
finish

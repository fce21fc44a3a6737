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
finish

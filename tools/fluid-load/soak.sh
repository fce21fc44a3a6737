#!/usr/bin/env bash
# Soak run: fluid-server with small synthetic models under a steady mix for DURATION seconds,
# driven by two fluid-load clients side by side: chat streams and health checks (3 in flight)
# and transcriptions of jfk.wav (1 in flight, temperature 0.5: one sampled decode without the
# fallback retries, which take a random-weight model many times longer). The
# first client reads the server's resident memory every INTERVAL seconds. Prints both reports
# and the load average; exits non-zero if any request failed.
#   tools/fluid-load/soak.sh [BUILD_DIR]      (default build/)
#   env: DURATION (600), INTERVAL (30), FLUID_TESTDATA (../shared/testdata)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
DURATION="${DURATION:-600}"
INTERVAL="${INTERVAL:-30}"
TESTDATA="${FLUID_TESTDATA:-$ROOT/../shared/testdata}"
[ -f "$TESTDATA/for-tests-ggml-tiny.bin" ] && [ -f "$TESTDATA/jfk.wav" ] ||
    { echo "soak: needs for-tests-ggml-tiny.bin and jfk.wav in $TESTDATA" >&2; exit 2; }

WORK="$(mktemp -d /tmp/fluid-soak.XXXXXX)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$WORK/models/llm" "$WORK/models/whisper"
"$BUILD/fluid-synth" --arch qwen2 --preset qwen2.5-0.5b --layers 2 --type q8_0 --seed 1 \
    -o "$WORK/models/llm/small.gguf" >/dev/null
"$BUILD/fluid-synth" --arch whisper --preset test --type f16 --from "$TESTDATA/for-tests-ggml-tiny.bin" \
    -o "$WORK/models/whisper/ggml-tiny.bin" >/dev/null

"$BUILD/fluid-server" --host 127.0.0.1 --port 0 --model-path "$WORK/models" --llm-model small \
    --whisper-model whisper-tiny --log-level warning >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 100); do
    PORT="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/server.out" | grep -o '[0-9]*$' || true)"
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log" >&2; echo "soak: the server did not start" >&2; exit 2; }
URL="http://127.0.0.1:$PORT"
# wait for the warm-up to load both models, so the first reading is of a ready server
for _ in $(seq 1 300); do
    curl -s "$URL/health" | grep -q '"status": *"ready"' && break
    sleep 0.1
done

# one request of each kind first: weights are memory-mapped and only count as resident once read
"$BUILD/fluid-load" --url "$URL" --model small --mix chat-stream,transcription -n 2 -c 2 \
    --audio "$TESTDATA/jfk.wav" --audio-field temperature=0.5 >/dev/null 2>&1 || true
echo "soak: $(date -u +%FT%TZ), ${DURATION} s, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
# the built-in vocabulary's special tokens (510-512) banned: every reply is max_tokens long
NOEOS='{"logit_bias":{"510":-100,"511":-100,"512":-100}}'
status=0
"$BUILD/fluid-load" --url "$URL" --model small --mix chat-stream=4,health=1 -c 3 -d "$DURATION" \
    --max-tokens 32 --body-extra "$NOEOS" --server-pid "$SERVER_PID" --interval "$INTERVAL" \
    >"$WORK/llm.txt" &
LLM_PID=$!
"$BUILD/fluid-load" --url "$URL" --mix transcription -c 1 -d "$DURATION" --audio "$TESTDATA/jfk.wav" \
    --audio-field temperature=0.5 --interval "$INTERVAL" >"$WORK/audio.txt" 2>/dev/null || status=1
wait "$LLM_PID" || status=1
echo "soak: load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
cat "$WORK/llm.txt" "$WORK/audio.txt"
grep -E "ERROR|WARN" "$WORK/server.log" | head -20 || true
exit $status

#!/usr/bin/env bash
# fluid-load (tools/fluid-load.c) against fluid-server with synthetic models: a short mixed run
# whose report must count every request, token and memory reading; failures of each class
# (HTTP status, transport, malformed body or stream) counted and turned into exit status 1;
# only loopback servers accepted.
set -u
source "$(dirname "$0")/lib/server.sh"
source "$(dirname "$0")/lib/synth_models.sh"
LOAD="$FLUID_BUILD_DIR/fluid-load"
[ -x "$LOAD" ] || { echo "SKIP: $LOAD is not built"; exit 77; }
PY=/usr/bin/python3
synth_tiny

field() { # field FILE EXPR: evaluates a python expression on the JSON report in FILE as d
    "$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"
}

# ---- usage: --help, only loopback, bad options ----
check "help" bash -c '"$0" --help | grep -q -- "--server-pid"' "$LOAD"
for url in http://example.com http://10.0.0.1:3847 http://127.0.0.1.example.com:80 https://127.0.0.1:1; do
    "$LOAD" --url "$url" -n 1 >/dev/null 2>"$WORK/err"
    check "refuses $url (exit 2)" [ $? = 2 ]
done
"$LOAD" --url http://example.com -n 1 2>"$WORK/err"
check "refusal message" grep -q "only loads a server on this machine" "$WORK/err"
"$LOAD" --mix chat=1 -n 1 2>"$WORK/err"
check "chat needs --model" [ $? = 2 ]
"$LOAD" --mix bogus=1 2>/dev/null
check "unknown kind" [ $? = 2 ]

# ---- a mixed run: every request passes, every figure is there ----
start_server --model-path "$M" --llm-model tiny --whisper-model none
"$LOAD" --url "$BASE" --model tiny --mix chat-stream=3,chat=1,completion=1,health=2 -n 35 -c 4 \
    --max-tokens 6 --body-extra "{$NOEOS}" --server-pid "$SERVER_PID" --interval 0.2 --json \
    >"$WORK/report.json" 2>"$WORK/progress"
check "mixed run exits 0" [ $? = 0 ]
check "35 requests, none failed" [ "$(field "$WORK/report.json" 'd["requests"], d["failed"]')" = "35 0" ]
check "kinds split by the mix" [ "$(field "$WORK/report.json" '[d["kinds"][k]["requests"] for k in ("chat-stream","chat","completion","health")]')" = "[15, 5, 5, 10]" ]
check "tokens counted" [ "$(field "$WORK/report.json" '[d["kinds"][k]["tokens"] for k in ("chat-stream","chat","completion")]')" = "[90, 30, 30]" ]
check "ttft of every stream" [ "$(field "$WORK/report.json" '(t:=d["kinds"]["chat-stream"]["ttft_ms"])["count"]==15 and 0<t["p50"]<=t["p90"]<=t["p99"]<=t["max"]')" = True ]
check "ttft before the end" [ "$(field "$WORK/report.json" 'd["kinds"]["chat-stream"]["ttft_ms"]["max"]<=d["kinds"]["chat-stream"]["latency_ms"]["max"]')" = True ]
check "latency percentiles" [ "$(field "$WORK/report.json" 'all((l:=k["latency_ms"])["count"]==k["requests"] and 0<l["p50"]<=l["p90"]<=l["p99"]<=l["max"] for k in d["kinds"].values())')" = True ]
check "throughput" [ "$(field "$WORK/report.json" 'd["requests_per_s"]>0 and d["tokens"]==150 and d["tokens_per_s"]>0')" = True ]
check "server memory read" [ "$(field "$WORK/report.json" '(m:=d["memory"])["pid"]=='"$SERVER_PID"' and m["before_kib"]>1000 and m["after_kib"]>1000 and m["peak_kib"]>=max(m["before_kib"],m["after_kib"]) and m["hwm_after_kib"]>0 and not m["process_gone"]')" = True ]
check "memory curve from 0 to the end" [ "$(field "$WORK/report.json" '(c:=d["memory"]["curve"])[0]["t_s"]==0 and c[0]["kib"]==d["memory"]["before_kib"] and c[-1]["kib"]==d["memory"]["after_kib"] and abs(c[-1]["t_s"]-d["wall_s"])<0.01')" = True ]

# the text report
"$LOAD" --url "$BASE" --model tiny --mix chat-stream,health -n 4 -c 2 --max-tokens 3 \
    --body-extra "{$NOEOS}" --server-pid "$SERVER_PID" >"$WORK/report.txt" 2>/dev/null
check "text run exits 0" [ $? = 0 ]
check "text summary" grep -q "4 requests .* 0 failed" "$WORK/report.txt"
check "text row per kind" bash -c 'grep -q "^chat-stream  *2  *0 " "$0" && grep -q "^health  *2  *0 " "$0"' "$WORK/report.txt"
check "text memory" grep -q "^server memory (pid $SERVER_PID, VmRSS): before .* MiB" "$WORK/report.txt"

# a time-bounded run stops starting requests after --duration
"$LOAD" --url "$BASE" --mix health -d 1 -c 2 --json >"$WORK/timed.json" 2>/dev/null
check "timed run" [ "$(field "$WORK/timed.json" 'd["failed"]==0 and d["requests"]>10 and 1<=d["wall_s"]<3')" = True ]

# ---- failures are counted by class and make the exit status 1 ----
"$LOAD" --url "$BASE" --model missing --mix chat,health -n 6 -c 2 --json >"$WORK/f404.json" 2>/dev/null
check "HTTP failures exit 1" [ $? = 1 ]
check "HTTP 404 counted" [ "$(field "$WORK/f404.json" 'd["kinds"]["chat"]["failures"]["http_404"], d["kinds"]["health"]["failed"], d["failed"]')" = "3 0 3" ]
check "server message noted" [ "$(field "$WORK/f404.json" 'any(e.startswith("chat: HTTP 404 ") and "missing" in e for e in d["errors"])')" = True ]
# transcriptions when the server has no Whisper model: an HTTP error, the upload itself works
"$LOAD" --url "$BASE" --mix transcription -n 2 -c 2 --audio "$WORK/server.log" --json >"$WORK/fwh.json" 2>/dev/null
check "transcription failure counted" [ "$(field "$WORK/fwh.json" '(k:=d["kinds"]["transcription"])["failed"]==2 and k["failures"]["transport"]==0 and k["failures"]["malformed"]==0')" = True ]
stop_server
"$LOAD" --url "$BASE" --mix health -n 3 -c 3 --json >"$WORK/fconn.json" 2>/dev/null
check "transport failures" [ "$(field "$WORK/fconn.json" 'd["kinds"]["health"]["failures"]["transport"]')" = 3 ]

# a loopback server that answers with malformed bodies and streams
cat >"$WORK/bad_server.py" <<'PY'
import http.server, json, sys
CHUNK = b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
class Bad(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def reply(self, body, ctype):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.reply(b"not json", "application/json")
    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not req.get("stream"):
            self.reply(b'{"object":"chat.completion","choices":[]}', "application/json")
        elif req["messages"][0]["content"] == "no-done":
            self.reply(CHUNK, "text/event-stream")
        else:
            self.reply(CHUNK + b"data: {oops\n\n", "text/event-stream")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Bad)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
"$PY" "$WORK/bad_server.py" >"$WORK/bad_port" &
BAD_PID=$!
trap 'kill "$BAD_PID" 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do [ -s "$WORK/bad_port" ] && break; sleep 0.1; done
BAD="http://127.0.0.1:$(cat "$WORK/bad_port")"
"$LOAD" --url "$BAD" --model m --mix health,chat -n 4 -c 2 --json >"$WORK/fbad.json" 2>/dev/null
check "malformed exits 1" [ $? = 1 ]
check "malformed bodies" [ "$(field "$WORK/fbad.json" '[d["kinds"][k]["failures"]["malformed"] for k in ("health","chat")]')" = "[2, 2]" ]
"$LOAD" --url "$BAD" --model m --mix chat-stream -n 2 -c 2 --prompt no-done --json >"$WORK/fdone.json" 2>/dev/null
check "stream without [DONE]" [ "$(field "$WORK/fdone.json" 'd["kinds"]["chat-stream"]["failures"]["malformed"]==2 and "without [DONE]" in d["errors"][0]')" = True ]
"$LOAD" --url "$BAD" --model m --mix chat-stream -n 2 -c 2 --json >"$WORK/fsse.json" 2>/dev/null
check "stream with a bad event" [ "$(field "$WORK/fsse.json" 'd["kinds"]["chat-stream"]["failures"]["malformed"]==2 and "not a JSON object" in d["errors"][0]')" = True ]
kill "$BAD_PID"; wait "$BAD_PID" 2>/dev/null

# ---- one real transcription (multipart upload of a WAV): seconds of CPU with a random-weight
# model, so only in the optimised build ----
if [ "${FLUID_SANITIZE:-0}" = 1 ]; then
    echo "note: transcription run skipped under the sanitizers (too slow with random weights)"
elif synth_whisper; then
    # half a second of a 440 Hz tone, 16 kHz mono 16-bit
    "$PY" -c 'import math,struct,sys,wave
w=wave.open(sys.argv[1],"wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
w.writeframes(b"".join(struct.pack("<h",int(8000*math.sin(2*math.pi*440*i/16000))) for i in range(8000)))' "$WORK/tone.wav"
    start_server --model-path "$M" --llm-model none --whisper-model whisper-tiny
    # temperature > 0: one decode, no fallback retries
    "$LOAD" --url "$BASE" --mix transcription,health -n 2 -c 2 --audio "$WORK/tone.wav" \
        --audio-field temperature=0.5 --timeout 300 --json >"$WORK/audio.json" 2>/dev/null
    check "transcription run" [ "$(field "$WORK/audio.json" 'd["failed"]==0 and d["kinds"]["transcription"]["requests"]==1')" = True ]
    stop_server
else
    echo "note: no synthetic Whisper model (test data missing): transcription run skipped"
fi
finish

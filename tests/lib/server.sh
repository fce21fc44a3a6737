# Shared by the HTTP tests: start fluid-server on a free port of 127.0.0.1 and stop it.
#   source tests/lib/server.sh; start_server [flags...]; ... ; (stopped on exit)
# Sets SERVER_PID, PORT, BASE (http://127.0.0.1:PORT), WORK (a temp dir removed on exit).

SERVER="${FLUID_BUILD_DIR:?FLUID_BUILD_DIR is not set}/fluid-server"
WORK="$(mktemp -d /tmp/fluid-http-test.XXXXXX)"
SERVER_PID=""

stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null
    fi
    if [ -n "$SERVER_PID" ]; then wait "$SERVER_PID" 2>/dev/null; SERVER_STATUS=$?; fi
    SERVER_PID=""
}

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT

# start_server [flags...]: runs the server with --port 0 and waits for its port (5 s at most).
start_server() {
    : >"$WORK/server.out"
    "$SERVER" --host 127.0.0.1 --port 0 "$@" >"$WORK/server.out" 2>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        PORT="$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$WORK/server.out" | grep -o '[0-9]*$')"
        [ -n "$PORT" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "server died" >&2; exit 1; }
        sleep 0.05
    done
    [ -n "$PORT" ] || { echo "server did not report its port" >&2; exit 1; }
    BASE="http://127.0.0.1:$PORT"
}

FAILS=0
PASSES=0
check() { # check NAME CONDITION...
    local name="$1"; shift
    if "$@"; then PASSES=$((PASSES + 1)); else FAILS=$((FAILS + 1)); echo "FAIL: $name" >&2; fi
}

# req METHOD PATH [curl args...]: sets STATUS, BODY, HEADERS (bounded to $REQ_TIMEOUT s, default 30).
req() {
    local method="$1" path="$2"; shift 2
    STATUS="$(curl -sS -m "${REQ_TIMEOUT:-30}" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X "$method" "$@" "$BASE$path")"
    BODY="$(cat "$WORK/body")"
    HEADERS="$(cat "$WORK/headers")"
}

json() { # json EXPR: evaluates a python expression on the parsed BODY as d
    /usr/bin/python3 -c "import json,sys; d=json.loads(sys.stdin.read()); print($1)" <<<"$BODY"
}

finish() {
    echo "$PASSES passed, $FAILS failed"
    [ "$FAILS" -eq 0 ]
}

#!/usr/bin/env bash
# fluid-cli on a whisper model: every --output-format, --token-ids, --language/--translate,
# --beam-size, --no-fallback, and clear errors for bad audio and bad flags. The model is a small
# random-weight one (its text is garbage; the formats and flags are what is checked).
set -uo pipefail

BUILD=${FLUID_BUILD_DIR:?FLUID_BUILD_DIR is not set}
DATA=${FLUID_TESTDATA:-}
CLI=$BUILD/fluid-cli
PY=/usr/bin/python3
if [ ! -f "$DATA/jfk.wav" ] || [ ! -f "$DATA/for-tests-ggml-tiny.bin" ]; then
    echo "SKIP: testdata (jfk.wav, for-tests-ggml-tiny.bin) not found"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
MODEL=$TMP/model.bin
"$BUILD/whisper-dump" synth "$DATA/for-tests-ggml-tiny.bin" "$MODEL" f16 5 || exit 1
WAV=$DATA/jfk.wav
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
# a few tokens per window keep the test fast (a random model never ends a window by itself)
run() { "$CLI" -m "$MODEL" -f "$WAV" -t 2 --language en --beam-size 1 --no-fallback --max-tokens 24 "$@"; }

run --output-format json >"$TMP/json" || fail "json run"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d["text"], str)' \
    "$TMP/json" || fail "json output is not {\"text\": ...}"

run --output-format verbose_json >"$TMP/vj" || fail "verbose_json run"
$PY - "$TMP/vj" <<'PY' || fail "verbose_json fields"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["task"] == "transcribe" and d["language"] == "english", d
assert abs(d["duration"] - 11.0) < 0.01
assert d["segments"], "no segments"
last = -1.0
for i, s in enumerate(d["segments"]):
    assert s["id"] == i and s["start"] <= s["end"] and s["start"] >= last
    last = s["start"]
    for k in ("seek", "tokens", "temperature", "avg_logprob", "compression_ratio",
              "no_speech_prob", "text"):
        assert k in s, k
PY

run --output-format text >"$TMP/text" || fail "text run"
[ -s "$TMP/text" ] || fail "text output is empty"

run --output-format srt >"$TMP/srt" || fail "srt run"
head -1 "$TMP/srt" | grep -qx 1 || fail "srt does not start with cue 1"
grep -qE '^[0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} --> [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}$' \
    "$TMP/srt" || fail "srt timing line"

run --output-format vtt >"$TMP/vtt" || fail "vtt run"
head -1 "$TMP/vtt" | grep -qx WEBVTT || fail "vtt header"
grep -qE '^[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} --> ' "$TMP/vtt" || fail "vtt timing line"

# --token-ids: the last line holds the ids (text and timestamps, no SOT prefix), deterministic
run --output-format text --token-ids >"$TMP/ids1" || fail "token-ids run"
run --output-format text --token-ids >"$TMP/ids2" || fail "token-ids rerun"
tail -1 "$TMP/ids1" | grep -qE '^[0-9]+( [0-9]+)*$' || fail "token ids line"
cmp -s "$TMP/ids1" "$TMP/ids2" || fail "greedy decoding is not deterministic"
tail -1 "$TMP/ids1" | tr ' ' '\n' | grep -qxE '5025[89]|50359' && fail "SOT prefix among the ids"
first=$(tail -1 "$TMP/ids1" | cut -d' ' -f1)
[ "$first" -ge 50364 ] || fail "the first id ($first) is not a timestamp"

# beam search with temperature fallback, translation, auto language, mp3: they run
"$CLI" -m "$MODEL" -f "$WAV" -t 2 --beam-size 2 --translate --max-tokens 24 >/dev/null ||
    fail "beam search + translate"
"$CLI" -m "$MODEL" -f "$DATA/jfk.mp3" -t 2 --beam-size 1 --max-tokens 24 --output-format json \
    >/dev/null || fail "mp3 input"

# errors: bad audio, unknown language, bad flags
echo "not audio" >"$TMP/bad.wav"
"$CLI" -m "$MODEL" -f "$TMP/bad.wav" 2>"$TMP/err" && fail "garbage audio accepted"
grep -q "audio" "$TMP/err" || fail "no message for garbage audio"
run --language klingon >/dev/null 2>"$TMP/err" && fail "unknown language accepted"
grep -q "unknown language" "$TMP/err" || fail "no message for an unknown language"
run --output-format xml >/dev/null 2>&1 && fail "unknown output format accepted"
"$CLI" -m "$MODEL" 2>/dev/null && fail "missing -f accepted"

if [ "$failures" != 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "ok"

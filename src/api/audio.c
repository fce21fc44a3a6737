/* POST /v1/audio/transcriptions and /v1/audio/translations (multipart/form-data) */
#include "api/audio.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/whisper.h"

#include "api/gen.h"
#include "api/json.h"
#include "api/sse.h"

typedef enum audio_format { FMT_JSON, FMT_TEXT, FMT_SRT, FMT_VTT, FMT_VERBOSE } audio_format;

typedef struct audio_input {
    rt_transcription_request rq;
    audio_format format;
    bool stream;
    bool want_segments, want_words;
    char model[RT_ID_MAX];
    char language[16];
    char prompt[4096];
} audio_input;

/* ---- formats ---- */

void api_subtitle_time(double seconds, char sep, char *out, size_t size) {
    if (!isfinite(seconds) || seconds < 0) seconds = 0;
    long long ms = llround(seconds * 1000.0);
    snprintf(out, size, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60,
             ms / 1000 % 60, sep, ms % 1000);
}

/* The text without leading and trailing white space, as (start, length). */
static const char *trimmed(const char *s, size_t *len) {
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)*s)) s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    *len = n;
    return s;
}

bool api_subtitles(json_t *segments, bool vtt, fl_buf *out) {
    if (vtt && !fl_buf_puts(out, "WEBVTT\n\n")) return false;
    size_t i;
    json_t *seg;
    json_array_foreach(segments, i, seg) {
        char start[32], end[32];
        api_subtitle_time(json_number_value(json_object_get(seg, "start")), vtt ? '.' : ',', start,
                          sizeof start);
        api_subtitle_time(json_number_value(json_object_get(seg, "end")), vtt ? '.' : ',', end,
                          sizeof end);
        const char *text = json_string_value(json_object_get(seg, "text"));
        size_t len;
        text = trimmed(text ? text : "", &len);
        if ((!vtt && !fl_buf_printf(out, "%zu\n", i + 1)) ||
            !fl_buf_printf(out, "%s --> %s\n%.*s\n\n", start, end, (int)len, text))
            return false;
    }
    return true;
}

static json_t *segment_json(const rt_segment *s) {
    json_t *tokens = json_array();
    for (size_t i = 0; tokens != NULL && i < s->n_tokens; i++)
        json_array_append_new(tokens, json_integer(s->tokens[i]));
    const char *text = s->text ? s->text : "";
    return json_pack("{s:i, s:I, s:f, s:f, s:o, s:o, s:f, s:f, s:f, s:f}", "id", s->id, "seek",
                     (json_int_t)s->seek, "start", s->start, "end", s->end, "text",
                     api_json_text(text, strlen(text)), "tokens", tokens, "temperature",
                     (double)s->temperature, "avg_logprob", (double)s->avg_logprob,
                     "compression_ratio", (double)s->compression_ratio, "no_speech_prob",
                     (double)s->no_speech_prob);
}

static void words_append(json_t *words, const rt_segment *s) {
    for (size_t i = 0; i < s->n_words; i++) {
        const char *w = s->words[i].text ? s->words[i].text : "";
        json_array_append_new(words,
                              json_pack("{s:o, s:f, s:f}", "word", api_json_text(w, strlen(w)),
                                        "start", s->words[i].start, "end", s->words[i].end));
    }
}

/* ---- request fields ---- */

/* Copies a text field into out (NUL-terminated); false with res filled when it is too long or
 * not text. */
static bool form_text(const api_form *form, const char *name, char *out, size_t size,
                      api_response *res) {
    const api_form_part *p = api_form_get(form, name);
    if (p == NULL) return true;
    if (p->len >= size || memchr(p->data, '\0', p->len) != NULL) {
        api_error(res, 400, name, "invalid_value", "'%s' must be text of at most %zu bytes.", name,
                  size - 1);
        return false;
    }
    memcpy(out, p->data, p->len);
    out[p->len] = '\0';
    return true;
}

static bool parse_format(const api_form *form, audio_input *in, api_response *res) {
    static const char *const names[] = {"json", "text", "srt", "vtt", "verbose_json"};
    char v[32] = "json";
    if (!form_text(form, "response_format", v, sizeof v, res)) return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(v, names[i]) == 0) {
            in->format = (audio_format)i;
            return true;
        }
    }
    api_error(res, 400, "response_format", "invalid_value",
              "'response_format' must be json, text, srt, vtt or verbose_json; got '%.32s'.", v);
    return false;
}

static bool parse_granularities(const api_form *form, audio_input *in, api_response *res) {
    for (size_t i = 0; i < form->n; i++) {
        const api_form_part *p = &form->parts[i];
        if (strcmp(p->name, "timestamp_granularities[]") != 0 &&
            strcmp(p->name, "timestamp_granularities") != 0)
            continue;
        if (p->len == 4 && memcmp(p->data, "word", 4) == 0)
            in->want_words = true;
        else if (p->len == 7 && memcmp(p->data, "segment", 7) == 0)
            in->want_segments = true;
        else {
            api_error(res, 400, "timestamp_granularities", "invalid_value",
                      "'timestamp_granularities[]' values must be 'segment' or 'word'.");
            return false;
        }
        if (in->format != FMT_VERBOSE) {
            api_error(res, 400, "timestamp_granularities", "invalid_value",
                      "'timestamp_granularities[]' requires response_format 'verbose_json'.");
            return false;
        }
    }
    if (!in->want_words) in->want_segments = true;
    return true;
}

static bool parse_number(const api_form *form, const char *name, double lo, double hi, double *out,
                         api_response *res) {
    char v[64] = "";
    if (!form_text(form, name, v, sizeof v, res)) return false;
    if (v[0] == '\0') return true;
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !isfinite(d) || d < lo || d > hi) {
        api_error(res, 400, name, "invalid_value", "'%s' must be a number from %g to %g.", name, lo,
                  hi);
        return false;
    }
    *out = d;
    return true;
}

static bool parse_bool(const api_form *form, const char *name, bool *out, api_response *res) {
    char v[16] = "";
    if (!form_text(form, name, v, sizeof v, res)) return false;
    if (v[0] == '\0' || strcmp(v, "false") == 0 || strcmp(v, "0") == 0) return true;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) return *out = true, true;
    api_error(res, 400, name, "invalid_value", "'%s' must be true or false.", name);
    return false;
}

static bool parse_language(const api_form *form, audio_input *in, api_response *res) {
    if (!form_text(form, "language", in->language, sizeof in->language, res)) return false;
    for (const char *c = in->language; *c != '\0'; c++) {
        if (!isalpha((unsigned char)*c)) {
            api_error(res, 400, "language", "invalid_value",
                      "'language' must be an ISO-639-1 code such as 'en'.");
            return false;
        }
    }
    if (in->language[0] != '\0') in->rq.language = in->language;
    return true;
}

static bool parse_audio(const api_request *req, bool translate, const api_limits *lim,
                        audio_input *in, api_response *res) {
    memset(in, 0, sizeof *in);
    if (req->form == NULL) {
        api_error(res, 415, NULL, "unsupported_media_type",
                  "Send the audio as multipart/form-data with a 'file' field.");
        return false;
    }
    const api_form_part *file = api_form_get(req->form, "file");
    if (file == NULL || file->len == 0) {
        api_error(res, 400, "file", file ? "invalid_value" : "missing_required_parameter",
                  file ? "The uploaded file is empty." : "'file' is required: the audio to read.");
        return false;
    }
    double temperature = 0;
    if (!form_text(req->form, "model", in->model, sizeof in->model, res) ||
        !form_text(req->form, "prompt", in->prompt, sizeof in->prompt, res) ||
        !parse_format(req->form, in, res) || !parse_granularities(req->form, in, res) ||
        !parse_number(req->form, "temperature", 0, 1, &temperature, res) ||
        !parse_bool(req->form, "stream", &in->stream, res))
        return false;
    if (!translate && !parse_language(req->form, in, res)) return false;
    if (in->stream && (translate || (in->format != FMT_JSON && in->format != FMT_TEXT))) {
        api_error(res, 400, "stream", "unsupported_value",
                  translate ? "Translations cannot be streamed."
                            : "Streaming needs response_format json or text.");
        return false;
    }
    /* OpenAI's model name stands for the configured default Whisper model. */
    in->rq.model = in->model[0] != '\0' && strcmp(in->model, "whisper-1") != 0 ? in->model : NULL;
    in->rq.audio = file->data;
    in->rq.audio_len = file->len;
    in->rq.prompt = in->prompt[0] != '\0' ? in->prompt : NULL;
    in->rq.translate = translate;
    in->rq.max_seconds = lim->max_audio_s;
    in->rq.temperature = (float)temperature;
    in->rq.word_timestamps = in->want_words;
    in->rq.segments =
        in->stream || in->format == FMT_SRT || in->format == FMT_VTT || in->format == FMT_VERBOSE;
    return true;
}

/* ---- non-streaming ---- */

/* verbose_json names the language as OpenAI does ("english"), the engine reports its code. */
static const char *language_name(const char *code) {
    const char *name = code ? fluid_whisper_lang_name(fluid_whisper_lang_id(code)) : NULL;
    return name ? name : code ? code : "";
}

static void audio_respond(api_response *res, const audio_input *in, const rt_event *fin,
                          json_t *segments, json_t *words) {
    const char *text = fin->full_text ? fin->full_text : "";
    size_t len;
    fl_buf b = {0};
    switch (in->format) {
    case FMT_JSON:
        api_set_json(res, 200, json_pack("{s:o}", "text", api_json_text(text, strlen(text))));
        return;
    case FMT_TEXT:
        text = trimmed(text, &len);
        if (fl_buf_append(&b, text, len) && fl_buf_puts(&b, "\n"))
            api_take_buf(res, 200, "text/plain; charset=utf-8", &b);
        else
            api_error(res, 500, NULL, "out_of_memory", "out of memory");
        break;
    case FMT_SRT:
    case FMT_VTT:
        if (api_subtitles(segments, in->format == FMT_VTT, &b))
            api_take_buf(res, 200, "text/plain; charset=utf-8", &b);
        else
            api_error(res, 500, NULL, "out_of_memory", "out of memory");
        break;
    case FMT_VERBOSE: {
        json_t *doc =
            json_pack("{s:s, s:s, s:f, s:o}", "task", in->rq.translate ? "translate" : "transcribe",
                      "language", language_name(fin->language), "duration", fin->duration, "text",
                      api_json_text(text, strlen(text)));
        if (doc != NULL && in->want_segments) json_object_set(doc, "segments", segments);
        if (doc != NULL && in->want_words) json_object_set(doc, "words", words);
        api_set_json(res, 200, doc);
        return;
    }
    }
    fl_buf_free(&b);
}

static void audio_collect(const api_request *req, api_response *res, const audio_input *in,
                          rt_job *job) {
    json_t *segments = json_array(), *words = json_array();
    rt_event ev;
    for (;;) {
        if (!api_job_next(job, req, -1, &ev)) {
            api_error(res, 499, NULL, "client_closed_request", "The client closed the request.");
            break;
        }
        if (ev.type == RT_EVENT_SEGMENT && ev.segment != NULL) {
            json_array_append_new(segments, segment_json(ev.segment));
            words_append(words, ev.segment);
        } else if (ev.type == RT_EVENT_FINISHED) {
            if (ev.model != NULL) snprintf(res->model, sizeof res->model, "%s", ev.model);
            if (ev.finish_reason == RT_FINISH_ERROR)
                api_rt_error(res, &ev.error);
            else if (ev.finish_reason == RT_FINISH_CANCELLED)
                api_error(res, 503, NULL, "cancelled", "The request was cancelled.");
            else
                audio_respond(res, in, &ev, segments, words);
            break;
        }
    }
    json_decref(segments);
    json_decref(words);
}

/* ---- streaming (transcript.text.delta / transcript.text.done) ---- */

typedef struct audio_stream {
    sse_stream sse;
    rt_job *job;
} audio_stream;

static sse_pump audio_format_event(const rt_event *ev, fl_buf *out) {
    switch (ev->type) {
    case RT_EVENT_NONE:
        return SSE_PUMP_IDLE;
    case RT_EVENT_TEXT:
        return SSE_PUMP_DATA;
    case RT_EVENT_SEGMENT: {
        const char *t = ev->segment && ev->segment->text ? ev->segment->text : "";
        json_t *doc = json_pack("{s:s, s:o}", "type", "transcript.text.delta", "delta",
                                api_json_text(t, strlen(t)));
        return sse_data(out, doc) ? SSE_PUMP_DATA : SSE_PUMP_FAIL;
    }
    case RT_EVENT_FINISHED: {
        json_t *doc;
        if (ev->finish_reason == RT_FINISH_ERROR || ev->finish_reason == RT_FINISH_CANCELLED) {
            doc = gen_error_json(ev);
        } else {
            const char *t = ev->full_text ? ev->full_text : "";
            doc = json_pack("{s:s, s:o}", "type", "transcript.text.done", "text",
                            api_json_text(t, strlen(t)));
        }
        return sse_data(out, doc) ? SSE_PUMP_END : SSE_PUMP_FAIL;
    }
    }
    return SSE_PUMP_FAIL;
}

static sse_pump audio_pump(sse_stream *s, int timeout_ms) {
    audio_stream *as = (audio_stream *)s;
    rt_event ev;
    if (!rt_job_next(as->job, timeout_ms, &ev)) return SSE_PUMP_IDLE;
    return audio_format_event(&ev, &s->out);
}

static void audio_finish(sse_stream *s, bool completed) {
    audio_stream *as = (audio_stream *)s;
    if (!completed) rt_job_cancel(as->job);
    rt_job_release(as->job);
}

static void audio_stream_start(const api_ctx *ctx, const api_request *req, api_response *res,
                               rt_job *job) {
    audio_stream *as = calloc(1, sizeof *as);
    if (as == NULL) {
        rt_job_release(job);
        api_error(res, 500, NULL, "out_of_memory", "out of memory");
        return;
    }
    sse_init(&as->sse, ctx, req, audio_pump, audio_finish);
    as->job = job;
    sse_respond(res, &as->sse);
}

static void audio_run(const api_ctx *ctx, const api_request *req, api_response *res,
                      bool translate) {
    audio_input *in = malloc(sizeof *in);
    if (in == NULL) {
        api_error(res, 500, NULL, "out_of_memory", "out of memory");
        return;
    }
    if (parse_audio(req, translate, &ctx->limits, in, res)) {
        snprintf(res->model, sizeof res->model, "%s", in->rq.model ? in->rq.model : "");
        rt_job *job = NULL;
        rt_error err = {0};
        if (rt_submit_transcription(ctx->rt, &in->rq, &job, &err) != RT_OK)
            api_rt_error(res, &err);
        else if (in->stream)
            audio_stream_start(ctx, req, res, job);
        else {
            audio_collect(req, res, in, job);
            rt_job_release(job);
        }
    }
    free(in);
}

void api_audio_transcriptions(const api_ctx *ctx, const api_request *req, api_response *res) {
    audio_run(ctx, req, res, false);
}

void api_audio_translations(const api_ctx *ctx, const api_request *req, api_response *res) {
    audio_run(ctx, req, res, true);
}

/* fluid-cli's speech mode: transcribes (or translates) an audio file with a ggml whisper model
 * and prints the result as text, json, verbose_json, srt or vtt (the OpenAI API's formats).
 * --token-ids adds every decoded token id (text and timestamps, no start-of-transcript prefix)
 * as the last line. */
#include "fluid-cli/whisper.h"
#include "fluid/whisper.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum out_format { OUT_TEXT, OUT_JSON, OUT_VERBOSE_JSON, OUT_SRT, OUT_VTT } out_format;

typedef struct cli_opts {
    const char *model, *audio, *language, *prompt;
    int threads, beam_size, max_tokens;
    bool translate, no_fallback, token_ids, word_timestamps;
    out_format format;
} cli_opts;

typedef struct collected {
    json_t *segments; /* verbose_json segments (also used for srt/vtt) */
    json_t *words;
    cli_opts *opts;
} collected;

static void usage(void) {
    fprintf(stderr,
            "usage: fluid-cli -m ggml-model.bin -f audio.ext [-t THREADS] [--language xx] "
            "[--translate] [--beam-size N] [--no-fallback] "
            "[--output-format json|text|srt|vtt|verbose_json] [--token-ids] [--prompt TEXT] "
            "[--word-timestamps] [--max-tokens N (per 30 s window)]\n");
}

static bool parse_format(const char *s, out_format *f) {
    static const char *const names[] = {"text", "json", "verbose_json", "srt", "vtt"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            *f = (out_format)i;
            return true;
        }
    }
    return false;
}

static bool parse_args(int argc, char **argv, cli_opts *o) {
    memset(o, 0, sizeof(*o));
    o->beam_size = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--translate") == 0)
            o->translate = true;
        else if (strcmp(a, "--no-fallback") == 0)
            o->no_fallback = true;
        else if (strcmp(a, "--token-ids") == 0)
            o->token_ids = true;
        else if (strcmp(a, "--word-timestamps") == 0)
            o->word_timestamps = true;
        else if (!has_value)
            return false;
        else if (strcmp(a, "-m") == 0)
            o->model = argv[++i];
        else if (strcmp(a, "-f") == 0)
            o->audio = argv[++i];
        else if (strcmp(a, "-t") == 0)
            o->threads = atoi(argv[++i]);
        else if (strcmp(a, "--language") == 0)
            o->language = argv[++i];
        else if (strcmp(a, "--prompt") == 0)
            o->prompt = argv[++i];
        else if (strcmp(a, "--beam-size") == 0)
            o->beam_size = atoi(argv[++i]);
        else if (strcmp(a, "--max-tokens") == 0)
            o->max_tokens = atoi(argv[++i]);
        else if (strcmp(a, "--output-format") == 0) {
            if (!parse_format(argv[++i], &o->format)) return false;
        } else
            return false;
    }
    return o->model && o->audio && o->threads >= 0 && o->beam_size >= -1 && o->max_tokens >= 0;
}

static json_t *word_json(const fluid_whisper_word *w) {
    return json_pack("{s:s, s:f, s:f, s:f}", "word", w->text, "start", w->start, "end", w->end,
                     "probability", (double)w->probability);
}

static bool on_segment(const fluid_whisper_segment *s, void *user) {
    collected *c = user;
    json_t *tokens = json_array();
    for (size_t i = 0; i < s->n_tokens; i++)
        json_array_append_new(tokens, json_integer(s->tokens[i]));
    json_t *seg =
        json_pack("{s:i, s:I, s:f, s:f, s:s, s:o, s:f, s:f, s:f, s:f}", "id", s->id, "seek",
                  (json_int_t)s->seek, "start", s->start, "end", s->end, "text", s->text, "tokens",
                  tokens, "temperature", (double)s->temperature, "avg_logprob",
                  (double)s->avg_logprob, "compression_ratio", (double)s->compression_ratio,
                  "no_speech_prob", (double)s->no_speech_prob);
    if (!seg) return false;
    if (s->n_words > 0) {
        json_t *words = json_array();
        for (size_t i = 0; i < s->n_words; i++) {
            json_array_append_new(words, word_json(&s->words[i]));
            json_array_append_new(c->words, word_json(&s->words[i]));
        }
        json_object_set_new(seg, "words", words);
    }
    json_array_append_new(c->segments, seg);
    return true;
}

/* hh:mm:ss,mmm (srt) or hh:mm:ss.mmm (vtt) */
static void print_time(double t, char sep) {
    long ms = (long)(t * 1000.0 + 0.5);
    printf("%02ld:%02ld:%02ld%c%03ld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, sep,
           ms % 1000);
}

static const char *trimmed(const char *s) {
    while (*s == ' ') s++;
    return s;
}

static void print_subtitles(const collected *c, bool vtt) {
    if (vtt) printf("WEBVTT\n\n");
    size_t i;
    json_t *seg;
    json_array_foreach(c->segments, i, seg) {
        if (!vtt) printf("%zu\n", i + 1);
        print_time(json_real_value(json_object_get(seg, "start")), vtt ? '.' : ',');
        printf(" --> ");
        print_time(json_real_value(json_object_get(seg, "end")), vtt ? '.' : ',');
        printf("\n%s\n\n", trimmed(json_string_value(json_object_get(seg, "text"))));
    }
}

static void print_result(const cli_opts *o, const collected *c, const fluid_whisper_result *r) {
    const char *text = trimmed(r->text);
    json_t *doc = NULL;
    switch (o->format) {
    case OUT_TEXT:
        printf("%s\n", text);
        break;
    case OUT_JSON:
        doc = json_pack("{s:s}", "text", text);
        break;
    case OUT_VERBOSE_JSON:
        doc = json_pack("{s:s, s:s, s:f, s:s, s:O}", "task",
                        o->translate ? "translate" : "transcribe", "language",
                        fluid_whisper_lang_name(fluid_whisper_lang_id(r->language)), "duration",
                        r->duration, "text", text, "segments", c->segments);
        if (doc && json_array_size(c->words) > 0) json_object_set(doc, "words", c->words);
        break;
    case OUT_SRT:
    case OUT_VTT:
        print_subtitles(c, o->format == OUT_VTT);
        break;
    }
    if (doc) {
        char *s = json_dumps(doc, JSON_ENSURE_ASCII | JSON_REAL_PRECISION(6));
        if (s) printf("%s\n", s);
        free(s);
        json_decref(doc);
    }
    if (o->token_ids) {
        for (size_t i = 0; i < r->n_token_ids; i++)
            printf("%s%d", i ? " " : "", (int)r->token_ids[i]);
        printf("\n");
    }
}

static int run(const cli_opts *o, fluid_whisper *model, fluid_pool *pool, const float *pcm,
               size_t n) {
    fluid_whisper_params p;
    fluid_whisper_params_defaults(&p);
    p.language = o->language;
    p.translate = o->translate;
    p.initial_prompt = o->prompt;
    p.fallback = !o->no_fallback;
    p.word_timestamps = o->word_timestamps;
    p.max_tokens = o->max_tokens;
    if (o->beam_size >= 0) p.beam_size = o->beam_size;
    collected c = {json_array(), json_array(), (cli_opts *)o};
    p.on_segment = on_segment;
    p.on_segment_user = &c;
    fluid_whisper_result r;
    fluid_error err = {0};
    int rc = 0;
    if (!c.segments || !c.words) {
        fprintf(stderr, "fluid-cli: out of memory\n");
        rc = 1;
    } else if (fluid_whisper_transcribe(model, pool, pcm, n, &p, &r, &err) != FLUID_OK) {
        fprintf(stderr, "fluid-cli: %s\n", err.message);
        rc = 1;
    } else {
        print_result(o, &c, &r);
        fluid_whisper_result_free(&r);
    }
    json_decref(c.segments);
    json_decref(c.words);
    return rc;
}

int cli_whisper_main(int argc, char **argv) {
    fluid_audio_log_to_fluid(); /* libav's complaints: debug lines, hidden by default */
    cli_opts o;
    if (!parse_args(argc, argv, &o)) {
        usage();
        return 2;
    }
    fluid_error err = {0};
    float *pcm = NULL;
    size_t n = 0;
    if (fluid_audio_decode_file(o.audio, &pcm, &n, &err) != FLUID_OK) {
        fprintf(stderr, "fluid-cli: %s: %s\n", o.audio, err.message);
        return 1;
    }
    fluid_whisper *model = fluid_whisper_load(o.model, &err);
    if (!model) {
        fprintf(stderr, "fluid-cli: %s\n", err.message);
        free(pcm);
        return 1;
    }
    fluid_pool *pool = fluid_pool_create(o.threads);
    int rc = 1;
    if (!pool)
        fprintf(stderr, "fluid-cli: cannot start threads\n");
    else
        rc = run(&o, model, pool, pcm, n);
    fluid_pool_free(pool);
    fluid_whisper_free(model);
    free(pcm);
    return rc;
}

/* Transcription of long audio as OpenAI Whisper's transcribe() does it: the log-mel of the
 * whole input (plus 30 s of silence), decoded in 30 s windows. Each window is decoded with
 * temperature fallback; its tokens are cut into segments at pairs of timestamps, and the next
 * window starts at the last timestamp (or after the window when it ended on a lone one).
 * Windows judged silent (no-speech probability above the threshold and a low log-probability)
 * are skipped.
 *
 * Word timestamps use a simple method (not cross-attention alignment): a segment's time span is
 * shared among its words in proportion to their length in bytes. */
#include "engine/whisper_decode.h"
#include "util/error.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INITIAL_TIMESTAMP 50 /* 1.0 s in timestamp steps */

void fluid_whisper_params_defaults(fluid_whisper_params *p) {
    memset(p, 0, sizeof(*p));
    p->temperature_increment = 0.2f;
    p->fallback = true;
    p->compression_ratio_threshold = 2.4f;
    p->logprob_threshold = -1.0f;
    p->no_speech_threshold = 0.6f;
    p->beam_size = 5;
    p->best_of = 5;
    p->condition_on_previous_text = true;
    p->timestamps = true;
}

typedef struct ibuf {
    int32_t *v;
    size_t n, cap;
} ibuf;

static bool ibuf_push(ibuf *b, const int32_t *v, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        int32_t *p = realloc(b->v, cap * sizeof(int32_t));
        if (!p) return false;
        b->v = p;
        b->cap = cap;
    }
    if (n) memcpy(b->v + b->n, v, n * sizeof(int32_t));
    b->n += n;
    return true;
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static bool sbuf_add(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) return false;
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return true;
}

typedef struct transcriber {
    fluid_whisper *m;
    fl_pool *pool;
    const fluid_whisper_params *p;
    fluid_error *err;
    wh_state *st;
    wh_rules rules;
    int32_t *suppress, *blank;
    float *mel; /* n_mels x n_frames */
    size_t n_frames, content_frames;
    float *window; /* n_mels x WH_CHUNK_FRAMES */
    int32_t lang_id;
    ibuf all_tokens; /* every kept token, the initial prompt first */
    size_t prompt_reset_since;
    sbuf text;
    ibuf result_tokens;
    int32_t n_segments;
} transcriber;

/* ---- set-up ------------------------------------------------------------------------------ */

static fluid_status nomem(transcriber *t) {
    return fl_set_error(t->err, FLUID_ERR_NOMEM, "whisper: out of memory");
}

static fluid_status setup_rules(transcriber *t) {
    const wh_specials *sp = &t->m->sp;
    size_t n_ns = 0, n_blank = 0;
    int32_t *ns = wh_non_speech_tokens(t->m, &n_ns);
    int32_t *blank = wh_tokenize(t->m, " ", &n_blank);
    int32_t *sup = ns ? realloc(ns, (n_ns + 6) * sizeof(int32_t)) : NULL;
    int32_t *bl = blank ? realloc(blank, (n_blank + 1) * sizeof(int32_t)) : NULL;
    if (!sup || !bl) {
        free(sup ? sup : ns);
        free(bl ? bl : blank);
        return nomem(t);
    }
    int32_t extra[] = {sp->translate, sp->transcribe, sp->sot, sp->prev, sp->solm, sp->nospeech};
    memcpy(sup + n_ns, extra, sizeof extra);
    bl[n_blank] = sp->eot;
    t->suppress = sup;
    t->blank = bl;
    t->rules = (wh_rules){sp,
                          t->m->hp.n_vocab,
                          sup,
                          n_ns + 6,
                          bl,
                          n_blank + 1,
                          t->p->timestamps,
                          MAX_INITIAL_TIMESTAMP};
    return FLUID_OK;
}

/* Copies frames [seek, seek + n) of the mel into the window, zero-padded to 30 s. */
static void fill_window(transcriber *t, size_t seek, size_t n) {
    int32_t n_mels = t->m->hp.n_mels;
    for (int32_t b = 0; b < n_mels; b++) {
        float *dst = t->window + (size_t)b * WH_CHUNK_FRAMES;
        memcpy(dst, t->mel + (size_t)b * t->n_frames + seek, n * sizeof(float));
        memset(dst + n, 0, (WH_CHUNK_FRAMES - n) * sizeof(float));
    }
}

/* Decodes <|startoftranscript|> on the encoded window and reads the language tokens. */
static int32_t detect_language(wh_state *st, const fluid_whisper *m, fl_pool *pool, float *prob,
                               fluid_error *err) {
    const wh_specials *sp = &m->sp;
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    if (!logits) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper: out of memory");
        return -1;
    }
    wh_seq_rewind(st, 0, 0);
    int32_t best = -1;
    if (wh_decode(st, 0, &sp->sot, 1, logits, NULL, pool, err) == FLUID_OK) {
        float *lang = logits + sp->lang_begin;
        best = 0;
        for (int32_t i = 1; i < sp->n_lang; i++)
            if (lang[i] > lang[best]) best = i;
        double sum = 0.0;
        for (int32_t i = 0; i < sp->n_lang; i++) sum += exp((double)(lang[i] - lang[best]));
        if (prob) *prob = (float)(1.0 / sum);
    }
    free(logits);
    return best;
}

static fluid_status choose_language(transcriber *t, fluid_whisper_result *res) {
    const char *lang = t->p->language;
    res->language_prob = 1.0f;
    if (!t->m->sp.multilingual) {
        t->lang_id = -1;
        snprintf(res->language, sizeof res->language, "en");
        return FLUID_OK;
    }
    if (lang && *lang && strcmp(lang, "auto") != 0) {
        t->lang_id = fluid_whisper_lang_id(lang);
        if (t->lang_id < 0 || t->lang_id >= t->m->sp.n_lang)
            return fl_set_error(t->err, FLUID_ERR_ARGUMENT, "whisper: unknown language '%s'", lang);
    } else {
        fill_window(t, 0, WH_CHUNK_FRAMES);
        fluid_status s = wh_encode(t->st, t->window, WH_CHUNK_FRAMES, t->pool, t->err);
        if (s != FLUID_OK) return s;
        t->lang_id = detect_language(t->st, t->m, t->pool, &res->language_prob, t->err);
        if (t->lang_id < 0) return t->err ? t->err->code : FLUID_ERR_NOMEM;
    }
    snprintf(res->language, sizeof res->language, "%s", fluid_whisper_lang_code(t->lang_id));
    return FLUID_OK;
}

static fluid_status add_initial_prompt(transcriber *t) {
    const char *p = t->p->initial_prompt;
    if (!p) return FLUID_OK;
    while (*p && isspace((unsigned char)*p)) p++;
    size_t len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1])) len--;
    if (len == 0) return FLUID_OK;
    char *spaced = malloc(len + 2);
    if (!spaced) return nomem(t);
    spaced[0] = ' ';
    memcpy(spaced + 1, p, len);
    spaced[len + 1] = '\0';
    size_t n;
    int32_t *ids = wh_tokenize(t->m, spaced, &n);
    free(spaced);
    bool ok = ids && ibuf_push(&t->all_tokens, ids, n);
    free(ids);
    return ok ? FLUID_OK : nomem(t);
}

/* ---- one window -------------------------------------------------------------------------- */

static bool needs_fallback(const fluid_whisper_params *p, const wh_window_result *r) {
    bool bad = r->compression_ratio > p->compression_ratio_threshold ||
               r->avg_logprob < p->logprob_threshold;
    bool silent =
        r->no_speech_prob > p->no_speech_threshold && r->avg_logprob < p->logprob_threshold;
    return bad && !silent;
}

static fluid_status decode_with_fallback(transcriber *t, uint64_t window_index,
                                         wh_window_result *out) {
    const fluid_whisper_params *p = t->p;
    size_t from = t->prompt_reset_since;
    wh_window_opts o = {t->all_tokens.v + from,
                        t->all_tokens.n - from,
                        t->lang_id,
                        p->translate && t->m->sp.multilingual,
                        p->timestamps,
                        p->temperature,
                        p->beam_size,
                        p->best_of > 0 ? p->best_of : 1,
                        p->max_tokens > 0 ? p->max_tokens : t->m->hp.n_text_ctx / 2,
                        p->seed + window_index * 7919u,
                        &t->rules,
                        p->should_abort,
                        p->should_abort_user};
    bool fallback = p->fallback && p->temperature_increment > 0.0f;
    for (int attempt = 0;; attempt++) {
        o.temperature = p->temperature + (float)attempt * p->temperature_increment;
        fluid_status s = wh_decode_window(t->st, t->m, &o, t->pool, out, t->err);
        if (s != FLUID_OK) return s;
        float next = o.temperature + p->temperature_increment;
        if (!fallback || next > 1.0f + 1e-6f || !needs_fallback(p, out)) return FLUID_OK;
        wh_window_result_free(out);
    }
}

static bool starts_word(const fluid_whisper *m, int32_t tok) {
    return tok < m->sp.eot && m->token_len[tok] > 0 && m->token_text[tok][0] == ' ';
}

static void free_words(fluid_whisper_word *w, size_t n) {
    for (size_t i = 0; w && i < n; i++) free((char *)w[i].text);
    free(w);
}

/* Splits a segment's text tokens into words (a word starts at a token beginning with a space)
 * and shares the segment's time among them by their length in bytes. */
static fluid_whisper_word *segment_words(const fluid_whisper *m, const int32_t *tok,
                                         const float *lp, size_t n, double start, double end,
                                         size_t *n_words) {
    size_t total = 0, count = 0;
    for (size_t i = 0; i < n; i++) {
        if (tok[i] >= m->sp.eot) continue;
        total += m->token_len[tok[i]];
        if (count == 0 || starts_word(m, tok[i])) count++;
    }
    *n_words = 0;
    fluid_whisper_word *w = calloc(count ? count : 1, sizeof(*w));
    if (!w) return NULL;
    size_t done_bytes = 0, k = 0;
    for (size_t i = 0; i < n && k < count;) {
        if (tok[i] >= m->sp.eot) {
            i++;
            continue;
        }
        size_t j = i, bytes = 0, n_text = 0;
        double lp_sum = 0.0;
        do { /* the word: tokens up to the next word start (timestamps skipped) */
            if (tok[j] < m->sp.eot) {
                bytes += m->token_len[tok[j]];
                lp_sum += lp[j];
                n_text++;
            }
            j++;
        } while (j < n && !starts_word(m, tok[j]));
        w[k].text = wh_tokens_text(m, tok + i, j - i);
        if (!w[k].text) {
            free_words(w, k);
            return NULL;
        }
        w[k].start = start + (end - start) * (double)done_bytes / (double)total;
        done_bytes += bytes;
        w[k].end = start + (end - start) * (double)done_bytes / (double)total;
        w[k].probability = (float)exp(lp_sum / (double)n_text);
        k++;
        i = j;
    }
    *n_words = k;
    return w;
}

static bool is_blank(const char *s) {
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

/* Reports one segment (tokens [a, b) of the window) and adds it to the results. */
static fluid_status emit_segment(transcriber *t, const wh_window_result *r, size_t a, size_t b,
                                 int64_t seek, double start, double end) {
    char *text = wh_tokens_text(t->m, r->tokens + a, b - a);
    if (!text) return nomem(t);
    fluid_status s = FLUID_OK;
    if (start >= end || is_blank(text)) { /* instantaneous or empty: dropped */
        free(text);
        return FLUID_OK;
    }
    fluid_whisper_segment seg = {t->n_segments,
                                 seek,
                                 start,
                                 end,
                                 text,
                                 r->tokens + a,
                                 b - a,
                                 r->temperature,
                                 r->avg_logprob,
                                 r->compression_ratio,
                                 r->no_speech_prob,
                                 NULL,
                                 0};
    fluid_whisper_word *words = NULL;
    if (t->p->word_timestamps) {
        words =
            segment_words(t->m, r->tokens + a, r->logprobs + a, b - a, start, end, &seg.n_words);
        if (!words) s = nomem(t);
        seg.words = words;
    }
    if (s == FLUID_OK && (!sbuf_add(&t->text, text, strlen(text)) ||
                          !ibuf_push(&t->result_tokens, r->tokens + a, b - a) ||
                          !ibuf_push(&t->all_tokens, r->tokens + a, b - a)))
        s = nomem(t);
    if (s == FLUID_OK) {
        t->n_segments++;
        if (t->p->on_segment && !t->p->on_segment(&seg, t->p->on_segment_user))
            s = fl_set_error(t->err, FLUID_ERR_CANCELLED, "whisper: stopped by the caller");
    }
    free_words(words, seg.n_words);
    free(text);
    return s;
}

/* Cuts the window's tokens into segments and reports them; *advance = frames to move on. */
static fluid_status segment_window(transcriber *t, const wh_window_result *r, size_t seek,
                                   size_t seg_frames, size_t *advance) {
    wh_span *spans = malloc((r->n_tokens + 1) * sizeof(wh_span));
    if (!spans) return nomem(t);
    size_t n = wh_split_window(r->tokens, r->n_tokens, t->m->sp.beg, seg_frames, spans, advance);
    double offset = (double)seek * WH_HOP / FLUID_WHISPER_SAMPLE_RATE;
    fluid_status s = FLUID_OK;
    for (size_t i = 0; i < n && s == FLUID_OK; i++)
        s = emit_segment(t, r, spans[i].begin, spans[i].end, (int64_t)seek, offset + spans[i].start,
                         offset + spans[i].stop);
    free(spans);
    return s;
}

static fluid_status run_windows(transcriber *t) {
    size_t seek = 0;
    uint64_t index = 0;
    while (seek < t->content_frames) {
        if (t->p->should_abort && t->p->should_abort(t->p->should_abort_user))
            return fl_set_error(t->err, FLUID_ERR_CANCELLED, "whisper: cancelled");
        size_t seg_frames = t->content_frames - seek;
        if (seg_frames > WH_CHUNK_FRAMES) seg_frames = WH_CHUNK_FRAMES;
        fill_window(t, seek, seg_frames);
        fluid_status s = wh_encode(t->st, t->window, WH_CHUNK_FRAMES, t->pool, t->err);
        wh_window_result r;
        if (s == FLUID_OK) s = decode_with_fallback(t, index++, &r);
        if (s != FLUID_OK) return s;
        const fluid_whisper_params *p = t->p;
        bool skip =
            r.no_speech_prob > p->no_speech_threshold && !(r.avg_logprob > p->logprob_threshold);
        size_t advance = seg_frames;
        if (!skip) s = segment_window(t, &r, seek, seg_frames, &advance);
        /* the next window sees this one's text, unless asked not to or it was a hot guess */
        if (!p->condition_on_previous_text || r.temperature > 0.5f)
            t->prompt_reset_since = t->all_tokens.n;
        wh_window_result_free(&r);
        if (s != FLUID_OK) return s;
        seek += advance > 0 ? advance : 1; /* a window always moves forward */
    }
    return FLUID_OK;
}

static fluid_status check_params(const fluid_whisper_params *p, fluid_error *err) {
    if (p->beam_size > 16 || p->best_of > 16 || p->beam_size < 0 || p->best_of < 0)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper: beam_size/best_of must be 0..16");
    if (!(p->temperature >= 0.0f && p->temperature <= 2.0f))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper: temperature must be in [0, 2]");
    return FLUID_OK;
}

static void transcriber_free(transcriber *t) {
    wh_state_free(t->st);
    free(t->suppress);
    free(t->blank);
    free(t->mel);
    free(t->window);
    free(t->all_tokens.v);
    free(t->text.s);
    free(t->result_tokens.v);
}

fluid_status fluid_whisper_transcribe(fluid_whisper *m, fluid_pool *pool, const float *pcm,
                                      size_t n_samples, const fluid_whisper_params *params,
                                      fluid_whisper_result *result, fluid_error *err) {
    fluid_whisper_params defaults;
    if (!params) {
        fluid_whisper_params_defaults(&defaults);
        params = &defaults;
    }
    if (result) memset(result, 0, sizeof(*result));
    if (!m || (!pcm && n_samples > 0))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper: no model or audio");
    fluid_status s = check_params(params, err);
    if (s != FLUID_OK) return s;
    transcriber t = {0};
    t.m = m;
    t.pool = pool;
    t.p = params;
    t.err = err;
    fluid_whisper_result res = {0};
    res.duration = (double)n_samples / FLUID_WHISPER_SAMPLE_RATE;
    int n_seq = params->beam_size > params->best_of ? params->beam_size : params->best_of;
    t.st = wh_state_create(m, n_seq > 1 ? n_seq : 1, err);
    t.window = malloc((size_t)m->hp.n_mels * WH_CHUNK_FRAMES * sizeof(float));
    if (!t.st || !t.window) s = t.st ? nomem(&t) : FLUID_ERR_NOMEM;
    if (s == FLUID_OK)
        s = wh_log_mel(pcm, n_samples, WH_CHUNK_SAMPLES, m->mel_filters, m->hp.n_mels,
                       m->n_fft_bins, &t.mel, &t.n_frames, err);
    if (s == FLUID_OK) {
        t.content_frames = t.n_frames - WH_CHUNK_FRAMES;
        s = setup_rules(&t);
    }
    if (s == FLUID_OK) s = choose_language(&t, &res);
    if (s == FLUID_OK) s = add_initial_prompt(&t);
    if (s == FLUID_OK) s = run_windows(&t);
    if (s == FLUID_OK && !t.text.s && !sbuf_add(&t.text, "", 0)) s = nomem(&t);
    if (s == FLUID_OK && result) {
        res.text = t.text.s;
        res.n_segments = t.n_segments;
        res.token_ids = t.result_tokens.v;
        res.n_token_ids = t.result_tokens.n;
        t.text.s = NULL;
        t.result_tokens.v = NULL;
        *result = res;
    }
    transcriber_free(&t);
    return s;
}

void fluid_whisper_result_free(fluid_whisper_result *r) {
    if (!r) return;
    free(r->text);
    free(r->token_ids);
    memset(r, 0, sizeof(*r));
}

int32_t fluid_whisper_detect_language(fluid_whisper *m, fluid_pool *pool, const float *pcm,
                                      size_t n_samples, float *prob, fluid_error *err) {
    if (!m->sp.multilingual) {
        fl_set_error(err, FLUID_ERR_UNSUPPORTED, "whisper: an English-only model");
        return -1;
    }
    size_t n = n_samples < WH_CHUNK_SAMPLES ? n_samples : WH_CHUNK_SAMPLES;
    float *mel = NULL;
    size_t frames = 0;
    wh_state *st = wh_state_create(m, 1, err);
    int32_t id = -1;
    if (st &&
        wh_log_mel(pcm, n, WH_CHUNK_SAMPLES, m->mel_filters, m->hp.n_mels, m->n_fft_bins, &mel,
                   &frames, err) == FLUID_OK &&
        wh_encode(st, mel, frames, pool, err) == FLUID_OK)
        id = detect_language(st, m, pool, prob, err);
    free(mel);
    wh_state_free(st);
    return id;
}

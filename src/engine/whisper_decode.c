/* Decoding a window as OpenAI Whisper does: the start-of-transcript sequence (after the
 * optional previous-context prompt), then tokens one at a time under the logit filters until
 * <|endoftext|> or the length limit. Candidates are ranked by sum of log-probabilities divided
 * by their length. */
#include "engine/whisper_decode.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One hypothesis: its sampled tokens and their log-probabilities. */
typedef struct cand {
    int32_t *tokens;
    float *logprobs;
    size_t n;
    double sum;
    int slot; /* the decoder sequence holding its cache */
    bool done;
} cand;

typedef struct window_ctx {
    wh_state *st;
    const fluid_whisper *m;
    const wh_window_opts *o;
    fl_pool *pool;
    fluid_error *err;
    int32_t n_vocab;
    int max_len;
    uint64_t rng;
    float *logits; /* per slot: n_vocab floats */
    float *primed; /* the logits after the initial tokens */
    float *step;   /* per slot: logits of one decoder step */
} window_ctx;

char *wh_tokens_text(const fluid_whisper *m, const int32_t *tokens, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (tokens[i] >= 0 && tokens[i] < m->sp.eot) len += m->token_len[tokens[i]];
    char *bytes = malloc(len + 1);
    if (!bytes) return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->sp.eot) continue;
        memcpy(bytes + at, m->token_text[tokens[i]], m->token_len[tokens[i]]);
        at += m->token_len[tokens[i]];
    }
    /* tokens are bytes: a character cut at either end becomes U+FFFD */
    char *text = wh_utf8_sanitize(bytes, at);
    free(bytes);
    return text;
}

static bool cand_alloc(cand *c, int max_len) {
    c->tokens = malloc((size_t)(max_len + 1) * sizeof(int32_t));
    c->logprobs = malloc((size_t)(max_len + 1) * sizeof(float));
    return c->tokens && c->logprobs;
}

static void cand_free(cand *c) {
    free(c->tokens);
    free(c->logprobs);
    c->tokens = NULL;
    c->logprobs = NULL;
}

static void cand_copy(cand *dst, const cand *src) {
    memcpy(dst->tokens, src->tokens, src->n * sizeof(int32_t));
    memcpy(dst->logprobs, src->logprobs, src->n * sizeof(float));
    dst->n = src->n;
    dst->sum = src->sum;
    dst->done = src->done;
}

static double cand_score(const cand *c) {
    return c->sum / (double)(c->n > 0 ? c->n : 1);
}

static uint64_t next_random(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Draws from softmax(logits / temperature). */
static int32_t sample_token(window_ctx *w, const float *logits, float temperature) {
    float max = -INFINITY;
    for (int32_t i = 0; i < w->n_vocab; i++)
        if (logits[i] > max) max = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < w->n_vocab; i++)
        if (logits[i] > -INFINITY) sum += exp((double)(logits[i] - max) / temperature);
    double r = (double)(next_random(&w->rng) >> 11) / 9007199254740992.0 * sum;
    int32_t last = 0;
    for (int32_t i = 0; i < w->n_vocab; i++) {
        if (logits[i] == -INFINITY) continue;
        last = i;
        r -= exp((double)(logits[i] - max) / temperature);
        if (r <= 0.0) return i;
    }
    return last;
}

static int32_t argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The start-of-transcript sequence, after the optional prompt; *sot_at = index of <|sot|>. */
static int32_t *initial_tokens(const fluid_whisper *m, const wh_window_opts *o, size_t *n,
                               size_t *sot_at) {
    const wh_specials *sp = &m->sp;
    size_t keep = o->n_prompt;
    size_t max_prompt = (size_t)m->hp.n_text_ctx / 2 - 1;
    if (keep > max_prompt) keep = max_prompt;
    int32_t *t = malloc((keep + 5) * sizeof(int32_t));
    if (!t) return NULL;
    size_t k = 0;
    if (keep > 0) {
        t[k++] = sp->prev;
        memcpy(t + k, o->prompt + (o->n_prompt - keep), keep * sizeof(int32_t));
        k += keep;
    }
    *sot_at = k;
    t[k++] = sp->sot;
    if (sp->multilingual) {
        t[k++] = sp->lang_begin + (o->lang_id >= 0 ? o->lang_id : 0);
        t[k++] = o->translate ? sp->translate : sp->transcribe;
    }
    if (!o->timestamps) t[k++] = sp->notimestamps;
    *n = k;
    return t;
}

/* Runs the initial tokens through slot 0: the logits of the last go to w->logits, and the
 * no-speech probability is read at <|startoftranscript|>. */
static fluid_status prime(window_ctx *w, float *no_speech_prob, size_t *n_initial) {
    size_t n, sot_at;
    int32_t *init = initial_tokens(w->m, w->o, &n, &sot_at);
    if (!init) return fl_set_error(w->err, FLUID_ERR_NOMEM, "whisper: out of memory");
    wh_seq_rewind(w->st, 0, 0);
    fluid_status s = wh_decode(w->st, 0, init, (int)sot_at + 1, w->logits, NULL, w->pool, w->err);
    if (s == FLUID_OK) {
        float *lp = malloc((size_t)w->n_vocab * sizeof(float));
        if (!lp)
            s = fl_set_error(w->err, FLUID_ERR_NOMEM, "whisper: out of memory");
        else {
            memcpy(lp, w->logits, (size_t)w->n_vocab * sizeof(float));
            wh_log_softmax(lp, w->n_vocab);
            *no_speech_prob = expf(lp[w->m->sp.nospeech]);
            free(lp);
        }
    }
    if (s == FLUID_OK && n > sot_at + 1)
        s = wh_decode(w->st, 0, init + sot_at + 1, (int)(n - sot_at - 1), w->logits, NULL, w->pool,
                      w->err);
    *n_initial = n;
    free(init);
    return s;
}

static bool aborted(const window_ctx *w) {
    return w->o->should_abort && w->o->should_abort(w->o->should_abort_user);
}

/* Filters the logits of slot for candidate c and returns their log-softmax (in place). */
static float *filtered_logprobs(window_ctx *w, int slot, const cand *c) {
    float *lg = w->logits + (size_t)slot * w->n_vocab;
    wh_apply_rules(w->o->rules, c->tokens, c->n, lg);
    wh_log_softmax(lg, w->n_vocab);
    return lg;
}

/* Feeds one token to each of n slots in one decoder pass; the logits land in the slots' rows
 * of w->logits. */
static fluid_status step_slots(window_ctx *w, const int *slots, const int32_t *tokens, int n) {
    if (n == 0) return FLUID_OK;
    fluid_status s = wh_decode_step(w->st, slots, tokens, n, w->step, w->pool, w->err);
    size_t nv = (size_t)w->n_vocab;
    for (int i = 0; s == FLUID_OK && i < n; i++)
        memcpy(w->logits + (size_t)slots[i] * nv, w->step + (size_t)i * nv, nv * sizeof(float));
    return s;
}

/* ---- beam search ------------------------------------------------------------------------- */

typedef struct beam_option {
    double score;
    int src; /* index of the beam it extends */
    int32_t token;
    float logprob;
} beam_option;

static int by_score_desc(const void *a, const void *b) {
    double x = ((const beam_option *)a)->score, y = ((const beam_option *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Top k entries of a log-probability row (k small). */
static void top_k(const float *lp, int32_t n, int k, int32_t *ids) {
    for (int i = 0; i < k; i++) ids[i] = -1;
    for (int32_t t = 0; t < n; t++) {
        if (lp[t] == -INFINITY) continue;
        int at = k;
        while (at > 0 && (ids[at - 1] < 0 || lp[ids[at - 1]] < lp[t])) at--;
        if (at >= k) continue;
        memmove(ids + at + 1, ids + at, (size_t)(k - at - 1) * sizeof(int32_t));
        ids[at] = t;
    }
}

typedef struct beam_search {
    int B;
    cand *beams, *next, *finished;
    int n_beams, n_finished;
    beam_option *opts;
    int *src_of;         /* per next beam: the beam it extends */
    bool *slot_busy;     /* per slot */
    bool *src_has_child; /* per current beam */
} beam_search;

/* Gathers every beam's best B + 1 continuations (only beam 0 at the first step, when all beams
 * are equal). */
static int collect_options(window_ctx *w, beam_search *bs) {
    int n_opts = 0, k = bs->B + 1;
    int32_t ids[64];
    for (int b = 0; b < bs->n_beams; b++) {
        cand *c = &bs->beams[b];
        float *lp = filtered_logprobs(w, c->slot, c);
        top_k(lp, w->n_vocab, k, ids);
        for (int i = 0; i < k && ids[i] >= 0; i++) {
            beam_option op = {c->sum + lp[ids[i]], b, ids[i], lp[ids[i]]};
            bs->opts[n_opts++] = op;
        }
    }
    qsort(bs->opts, (size_t)n_opts, sizeof(beam_option), by_score_desc);
    return n_opts;
}

/* Picks the next beams from the options: endings go to the finished list (up to B), the best
 * B others continue. A new beam keeps its source's decoder slot the first time; other children
 * of the same source get a copy in a slot that no source holds. */
static fluid_status advance_beams(window_ctx *w, beam_search *bs, int n_opts, int *n_next_out) {
    int n_next = 0;
    for (int i = 0; i < n_opts && n_next < bs->B; i++) {
        const beam_option *op = &bs->opts[i];
        const cand *src = &bs->beams[op->src];
        if (op->token == w->m->sp.eot) {
            if (bs->n_finished < bs->B) {
                cand *f = &bs->finished[bs->n_finished++];
                cand_copy(f, src);
                f->sum = op->score;
                f->done = true;
            }
            continue;
        }
        cand *c = &bs->next[n_next];
        cand_copy(c, src);
        c->tokens[c->n] = op->token;
        c->logprobs[c->n++] = op->logprob;
        c->sum = op->score;
        c->slot = -1;
        bs->src_of[n_next++] = op->src;
    }
    for (int b = 0; b < bs->B; b++) bs->slot_busy[b] = bs->src_has_child[b] = false;
    for (int j = 0; j < n_next; j++) {
        int src = bs->src_of[j];
        if (bs->src_has_child[src]) continue;
        bs->src_has_child[src] = true;
        bs->next[j].slot = bs->beams[src].slot;
        bs->slot_busy[bs->next[j].slot] = true;
    }
    for (int j = 0; j < n_next; j++) {
        if (bs->next[j].slot >= 0) continue;
        int slot = 0;
        while (bs->slot_busy[slot]) slot++;
        wh_seq_copy(w->st, slot, bs->beams[bs->src_of[j]].slot);
        bs->next[j].slot = slot;
        bs->slot_busy[slot] = true;
    }
    int slots[64];
    int32_t toks[64];
    for (int j = 0; j < n_next; j++) {
        slots[j] = bs->next[j].slot;
        toks[j] = bs->next[j].tokens[bs->next[j].n - 1];
    }
    fluid_status s = step_slots(w, slots, toks, n_next);
    cand *tmp = bs->beams;
    bs->beams = bs->next;
    bs->next = tmp;
    bs->n_beams = n_next;
    *n_next_out = n_next;
    return s;
}

static void beam_search_free(beam_search *bs) {
    for (int i = 0; i < bs->B; i++) {
        if (bs->beams) cand_free(&bs->beams[i]);
        if (bs->next) cand_free(&bs->next[i]);
        if (bs->finished) cand_free(&bs->finished[i]);
    }
    free(bs->beams);
    free(bs->next);
    free(bs->finished);
    free(bs->opts);
    free(bs->src_of);
    free(bs->slot_busy);
    free(bs->src_has_child);
}

static bool beam_search_init(beam_search *bs, int B, int max_len) {
    memset(bs, 0, sizeof(*bs));
    bs->B = B;
    bs->beams = calloc((size_t)B, sizeof(cand));
    bs->next = calloc((size_t)B, sizeof(cand));
    bs->finished = calloc((size_t)B, sizeof(cand));
    bs->opts = malloc((size_t)B * (size_t)(B + 1) * sizeof(beam_option));
    bs->src_of = malloc((size_t)B * sizeof(int));
    bs->slot_busy = malloc((size_t)B * sizeof(bool));
    bs->src_has_child = malloc((size_t)B * sizeof(bool));
    if (!bs->beams || !bs->next || !bs->finished || !bs->opts || !bs->src_of || !bs->slot_busy ||
        !bs->src_has_child)
        return false;
    for (int i = 0; i < B; i++) {
        if (!cand_alloc(&bs->beams[i], max_len) || !cand_alloc(&bs->next[i], max_len) ||
            !cand_alloc(&bs->finished[i], max_len))
            return false;
    }
    return true;
}

/* Beam search at temperature 0 (OpenAI's, patience 1); the best candidate goes to *best. */
static fluid_status decode_beams(window_ctx *w, int B, cand *best) {
    beam_search bs;
    if (!beam_search_init(&bs, B, w->max_len)) {
        beam_search_free(&bs);
        return fl_set_error(w->err, FLUID_ERR_NOMEM, "whisper: out of memory");
    }
    bs.beams[0].slot = 0;
    bs.n_beams = 1;
    fluid_status s = FLUID_OK;
    while (s == FLUID_OK && bs.n_finished < B && bs.n_beams > 0 &&
           (int)bs.beams[0].n < w->max_len) {
        if (aborted(w)) {
            s = fl_set_error(w->err, FLUID_ERR_CANCELLED, "whisper: cancelled");
            break;
        }
        int n_next;
        s = advance_beams(w, &bs, collect_options(w, &bs), &n_next);
    }
    /* too few endings: the unfinished beams (best first) fill up the candidates */
    for (int i = 0; s == FLUID_OK && bs.n_finished < B && i < bs.n_beams; i++)
        cand_copy(&bs.finished[bs.n_finished++], &bs.beams[i]);
    if (s == FLUID_OK) {
        int pick = 0;
        for (int i = 1; i < bs.n_finished; i++)
            if (cand_score(&bs.finished[i]) > cand_score(&bs.finished[pick])) pick = i;
        if (bs.n_finished > 0) cand_copy(best, &bs.finished[pick]);
    }
    beam_search_free(&bs);
    return s;
}

/* n_cand independent candidates (one when greedy) decoded side by side, candidate i in slot
 * i; the best goes to *best. */
static fluid_status decode_sampled(window_ctx *w, int n_cand, float temperature, cand *best) {
    cand *c = calloc((size_t)n_cand, sizeof(cand));
    int *slots = malloc((size_t)n_cand * sizeof(int));
    int32_t *toks = malloc((size_t)n_cand * sizeof(int32_t));
    fluid_status s = FLUID_OK;
    if (!c || !slots || !toks) s = fl_set_error(w->err, FLUID_ERR_NOMEM, "whisper: out of memory");
    size_t nv = (size_t)w->n_vocab;
    for (int i = 0; s == FLUID_OK && i < n_cand; i++) {
        if (!cand_alloc(&c[i], w->max_len))
            s = fl_set_error(w->err, FLUID_ERR_NOMEM, "whisper: out of memory");
        c[i].slot = i;
        wh_seq_copy(w->st, i, 0); /* every candidate starts from the primed state */
        memcpy(w->logits + (size_t)i * nv, w->primed, nv * sizeof(float));
    }
    for (int len = 0; s == FLUID_OK && len < w->max_len; len++) {
        if (aborted(w)) {
            s = fl_set_error(w->err, FLUID_ERR_CANCELLED, "whisper: cancelled");
            break;
        }
        int n_active = 0;
        for (int i = 0; i < n_cand; i++) {
            if (c[i].done) continue;
            float *lg = w->logits + (size_t)i * nv;
            wh_apply_rules(w->o->rules, c[i].tokens, c[i].n, lg);
            int32_t tok =
                temperature > 0.0f ? sample_token(w, lg, temperature) : argmax(lg, w->n_vocab);
            wh_log_softmax(lg, w->n_vocab);
            c[i].sum += lg[tok];
            if (tok == w->m->sp.eot) {
                c[i].done = true;
                continue;
            }
            c[i].logprobs[c[i].n] = lg[tok];
            c[i].tokens[c[i].n++] = tok;
            slots[n_active] = i;
            toks[n_active++] = tok;
        }
        if (n_active == 0) break;
        s = step_slots(w, slots, toks, n_active);
    }
    int pick = 0;
    for (int i = 1; s == FLUID_OK && i < n_cand; i++)
        if (cand_score(&c[i]) > cand_score(&c[pick])) pick = i;
    if (s == FLUID_OK) cand_copy(best, &c[pick]);
    for (int i = 0; c && i < n_cand; i++) cand_free(&c[i]);
    free(c);
    free(slots);
    free(toks);
    return s;
}

fluid_status wh_decode_window(wh_state *st, const fluid_whisper *m, const wh_window_opts *o,
                              fl_pool *pool, wh_window_result *out, fluid_error *err) {
    memset(out, 0, sizeof(*out));
    bool beam = o->temperature <= 0.0f && o->beam_size > 1;
    int n_slots = beam ? o->beam_size : o->temperature > 0.0f && o->best_of > 1 ? o->best_of : 1;
    window_ctx w = {st, m, o, pool, err, m->hp.n_vocab, 0, o->seed, NULL, NULL, NULL};
    w.logits = malloc((size_t)n_slots * (size_t)w.n_vocab * sizeof(float));
    w.primed = malloc((size_t)w.n_vocab * sizeof(float));
    w.step = malloc((size_t)n_slots * (size_t)w.n_vocab * sizeof(float));
    cand best = {0};
    fluid_status s = FLUID_OK;
    if (!w.logits || !w.primed || !w.step)
        s = fl_set_error(err, FLUID_ERR_NOMEM, "whisper: out of memory");
    size_t n_initial = 0;
    if (s == FLUID_OK) s = prime(&w, &out->no_speech_prob, &n_initial);
    if (s == FLUID_OK) {
        memcpy(w.primed, w.logits, (size_t)w.n_vocab * sizeof(float));
        int room = m->hp.n_text_ctx - (int)n_initial;
        w.max_len = o->max_tokens < room ? o->max_tokens : room;
        if (w.max_len < 0) w.max_len = 0;
        if (!cand_alloc(&best, w.max_len))
            s = fl_set_error(err, FLUID_ERR_NOMEM, "whisper: out of memory");
    }
    if (s == FLUID_OK)
        s = beam ? decode_beams(&w, o->beam_size, &best)
                 : decode_sampled(&w, n_slots, o->temperature, &best);
    if (s == FLUID_OK) {
        out->tokens = best.tokens;
        out->logprobs = best.logprobs;
        best.tokens = NULL;
        best.logprobs = NULL;
        out->n_tokens = best.n;
        out->sum_logprob = best.sum;
        out->avg_logprob = (float)(best.sum / (double)(best.n + 1));
        out->temperature = o->temperature;
        out->text = wh_tokens_text(m, out->tokens, out->n_tokens);
        if (!out->text)
            s = fl_set_error(err, FLUID_ERR_NOMEM, "whisper: out of memory");
        else
            out->compression_ratio = wh_compression_ratio(out->text, strlen(out->text));
    }
    cand_free(&best);
    free(w.logits);
    free(w.primed);
    free(w.step);
    if (s != FLUID_OK) wh_window_result_free(out);
    return s;
}

void wh_window_result_free(wh_window_result *r) {
    free(r->tokens);
    free(r->logprobs);
    free(r->text);
    memset(r, 0, sizeof(*r));
}

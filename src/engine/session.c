/* Sessions: the KV cache of one sequence, the batch scratch (allocated once) and the logits of
 * the last decode call. */
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "util/error.h"

enum {
    MAX_BATCH = 512, /* longer inputs are evaluated in chunks of this many tokens */
};

static size_t max_size(size_t a, size_t b) {
    return a > b ? a : b;
}

static size_t kv_floats(const fluid_session *s) {
    return fl_hp_kv_floats(&s->model->hp, s->n_ctx);
}

/* Allocates count floats, or records that an allocation failed. */
static float *alloc_floats(size_t count, bool *failed) {
    float *p = malloc(count * sizeof(float));
    if (p == NULL) *failed = true;
    return p;
}

static bool alloc_buffers(fluid_session *s) {
    const fl_hparams *hp = &s->model->hp;
    size_t b = (size_t)s->max_batch, qd = (size_t)fl_hp_q_dim(hp), kvd = (size_t)fl_hp_kv_dim(hp);
    size_t ff = (size_t)hp->n_ff, pairs = (size_t)(hp->n_rot / 2 > 0 ? hp->n_rot / 2 : 1);
    bool failed = false;
    s->k_cache = alloc_floats(kv_floats(s), &failed);
    s->v_cache = alloc_floats(kv_floats(s), &failed);
    s->x = alloc_floats(b * (size_t)hp->n_embd, &failed);
    s->xb = alloc_floats(b * (size_t)hp->n_embd, &failed);
    s->q = alloc_floats(b * qd, &failed);
    s->k = alloc_floats(b * kvd, &failed);
    s->v = alloc_floats(b * kvd, &failed);
    s->att = alloc_floats(b * qd, &failed);
    s->ffn = alloc_floats(b * ff, &failed);
    s->fused = alloc_floats(b * max_size(qd + 2 * kvd, 2 * ff), &failed);
    s->rope_cos = alloc_floats(b * pairs, &failed);
    s->rope_sin = alloc_floats(b * pairs, &failed);
    return !failed;
}

fluid_session *fluid_session_create(fluid_model *model, int32_t n_ctx, fluid_error *err) {
    if (model == NULL || n_ctx < 0) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "fluid_session_create: invalid arguments");
        return NULL;
    }
    fluid_session *s = calloc(1, sizeof *s);
    if (s == NULL) {
        fl_set_error(err, FLUID_ERR_NOMEM, "fluid_session_create: out of memory");
        return NULL;
    }
    s->model = model;
    s->n_ctx = fl_hp_session_ctx(&model->hp, n_ctx);
    s->max_batch = s->n_ctx < MAX_BATCH ? s->n_ctx : MAX_BATCH;
    if (!alloc_buffers(s)) {
        fl_set_error(err, FLUID_ERR_NOMEM,
                     "fluid_session_create: out of memory for a context of %d tokens (%zu MiB of "
                     "KV cache)",
                     (int)s->n_ctx, 2 * kv_floats(s) * sizeof(float) >> 20);
        fluid_session_free(s);
        return NULL;
    }
    return s;
}

void fluid_session_free(fluid_session *s) {
    if (s == NULL) return;
    float *buffers[] = {s->k_cache, s->v_cache, s->x,     s->xb,       s->q,        s->k,     s->v,
                        s->att,     s->ffn,     s->fused, s->rope_cos, s->rope_sin, s->logits};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(buffers[i]);
    free(s);
}

int32_t fluid_session_n_ctx(const fluid_session *s) {
    return s ? s->n_ctx : -1;
}

int32_t fluid_session_n_past(const fluid_session *s) {
    return s ? s->n_past : -1;
}

size_t fluid_session_bytes(const fluid_session *s) {
    return s ? 2 * kv_floats(s) * sizeof(float) : 0;
}

void fluid_session_rewind(fluid_session *s, int32_t n_past) {
    if (s == NULL) return;
    if (n_past < 0) n_past = 0;
    if (n_past < s->n_past) {
        s->n_past = n_past;
        s->n_logits = 0; /* they belonged to positions now forgotten */
    }
}

void fluid_session_keep_all_logits(fluid_session *s, bool on) {
    if (s) s->keep_all_logits = on;
}

static fluid_status check_decode(const fluid_session *s, const int32_t *tokens, int32_t n,
                                 fluid_error *err) {
    if (s == NULL || tokens == NULL || n <= 0)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "fluid_session_decode: no tokens");
    if (n > s->n_ctx - s->n_past)
        return fl_set_error(err, FLUID_ERR_CONTEXT_FULL,
                            "%d tokens do not fit in the context (%d of %d positions used)", (int)n,
                            (int)s->n_past, (int)s->n_ctx);
    for (int32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= s->model->hp.n_vocab)
            return fl_set_error(err, FLUID_ERR_ARGUMENT, "token id %d is out of range [0, %d)",
                                (int)tokens[i], (int)s->model->hp.n_vocab);
    return FLUID_OK;
}

static fluid_status reserve_logits(fluid_session *s, size_t rows, fluid_error *err) {
    size_t need = rows * (size_t)s->model->hp.n_vocab;
    if (need <= s->logits_cap) return FLUID_OK;
    float *p = realloc(s->logits, need * sizeof(float));
    if (p == NULL)
        return fl_set_error(err, FLUID_ERR_NOMEM, "out of memory for the logits of %zu tokens",
                            rows);
    s->logits = p;
    s->logits_cap = need;
    return FLUID_OK;
}

fluid_status fluid_session_decode(fluid_session *s, const int32_t *tokens, int32_t n,
                                  fluid_pool *pool, fluid_error *err) {
    fluid_status st = check_decode(s, tokens, n, err);
    if (st == FLUID_OK) st = reserve_logits(s, s->keep_all_logits ? (size_t)n : 1, err);
    if (st != FLUID_OK) return st;
    size_t n_vocab = (size_t)s->model->hp.n_vocab;
    for (int32_t done = 0; done < n;) {
        int chunk = n - done < s->max_batch ? n - done : s->max_batch;
        bool last = done + chunk == n;
        if (s->keep_all_logits)
            fl_forward(s, tokens + done, chunk, chunk, s->logits + (size_t)done * n_vocab, pool);
        else
            fl_forward(s, tokens + done, chunk, last ? 1 : 0, s->logits, pool);
        s->n_past += chunk;
        done += chunk;
    }
    s->n_decoded = n;
    s->n_logits = s->keep_all_logits ? n : 1;
    return FLUID_OK;
}

const float *fluid_session_logits(const fluid_session *s, int32_t i) {
    if (s == NULL || s->n_logits == 0) return NULL;
    if (i == -1) i = s->n_decoded - 1;
    int32_t first = s->n_decoded - s->n_logits; /* the rows kept are those of the last tokens */
    if (i < first || i >= s->n_decoded) return NULL;
    return s->logits + (size_t)(i - first) * (size_t)s->model->hp.n_vocab;
}

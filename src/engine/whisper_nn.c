/* Whisper's forward passes. Activations are float rows (one row per position); every weight
 * product goes through fl_matmul. The encoder runs once per 30 s window and also computes each
 * decoder layer's cross-attention keys/values; the decoder keeps a self-attention KV cache per
 * sequence (beam). */
#include "engine/attention.h"
#include "engine/whisper_internal.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-5f

struct wh_state {
    const fluid_whisper *m;
    int n_seq;
    float *enc_out;           /* n_audio_ctx x n_audio_state */
    float *cross_k, *cross_v; /* per decoder layer: n_audio_ctx x n_text_state */
    float *self_k, *self_v;   /* per sequence, per layer: n_text_ctx x n_text_state */
    int *n_past;
};

static size_t self_layer_size(const fluid_whisper *m) {
    return (size_t)m->hp.n_text_ctx * (size_t)m->hp.n_text_state;
}

static float *self_cache(float *base, const fluid_whisper *m, int seq, int layer) {
    return base + ((size_t)seq * (size_t)m->hp.n_text_layer + (size_t)layer) * self_layer_size(m);
}

wh_state *wh_state_create(const fluid_whisper *m, int n_seq, fluid_error *err) {
    wh_state *s = calloc(1, sizeof(*s));
    if (!s) goto nomem;
    const wh_hparams *hp = &m->hp;
    s->m = m;
    s->n_seq = n_seq;
    size_t cross = (size_t)hp->n_text_layer * (size_t)hp->n_audio_ctx * (size_t)hp->n_text_state;
    size_t self = (size_t)n_seq * (size_t)hp->n_text_layer * self_layer_size(m);
    s->enc_out = malloc((size_t)hp->n_audio_ctx * (size_t)hp->n_audio_state * sizeof(float));
    s->cross_k = malloc(cross * sizeof(float));
    s->cross_v = malloc(cross * sizeof(float));
    s->self_k = malloc(self * sizeof(float));
    s->self_v = malloc(self * sizeof(float));
    s->n_past = calloc((size_t)n_seq, sizeof(int));
    if (!s->enc_out || !s->cross_k || !s->cross_v || !s->self_k || !s->self_v || !s->n_past)
        goto nomem;
    return s;
nomem:
    wh_state_free(s);
    fl_set_error(err, FLUID_ERR_NOMEM, "whisper: out of memory for the decoder state");
    return NULL;
}

void wh_state_free(wh_state *s) {
    if (!s) return;
    free(s->enc_out);
    free(s->cross_k);
    free(s->cross_v);
    free(s->self_k);
    free(s->self_v);
    free(s->n_past);
    free(s);
}

const float *wh_encoder_output(const wh_state *s) {
    return s->enc_out;
}

int wh_seq_past(const wh_state *s, int seq) {
    return s->n_past[seq];
}

void wh_seq_rewind(wh_state *s, int seq, int n_past) {
    if (n_past < s->n_past[seq]) s->n_past[seq] = n_past;
}

void wh_seq_copy(wh_state *s, int dst, int src) {
    if (dst == src) return;
    const fluid_whisper *m = s->m;
    size_t rows = (size_t)s->n_past[src] * (size_t)m->hp.n_text_state;
    for (int l = 0; l < m->hp.n_text_layer; l++) {
        memcpy(self_cache(s->self_k, m, dst, l), self_cache(s->self_k, m, src, l),
               rows * sizeof(float));
        memcpy(self_cache(s->self_v, m, dst, l), self_cache(s->self_v, m, src, l),
               rows * sizeof(float));
    }
    s->n_past[dst] = s->n_past[src];
}

/* ---- element-wise pieces ----------------------------------------------------------------- */

static void layer_norm(const float *x, float *y, int rows, int n, wh_norm norm) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        float *yr = y + (size_t)r * n;
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < n; i++) mean += xr[i];
        mean /= n;
        for (int i = 0; i < n; i++) var += (xr[i] - mean) * (xr[i] - mean);
        float inv = 1.0f / sqrtf((float)(var / n) + LN_EPS);
        for (int i = 0; i < n; i++) yr[i] = (float)(xr[i] - mean) * inv * norm.w[i] + norm.b[i];
    }
}

static void add_bias(float *y, int rows, int n, const float *b) {
    if (!b) return;
    for (int r = 0; r < rows; r++)
        for (int i = 0; i < n; i++) y[(size_t)r * n + i] += b[i];
}

static void add_rows(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

/* GELU as PyTorch's nn.GELU(): x * Φ(x) with the exact error function. */
static void gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

/* y = x Wᵀ + b for `rows` rows. */
static void linear(const fl_tensor *w, const float *b, const float *x, int rows, float *y,
                   fl_pool *pool) {
    fl_matmul(w, x, rows, y, pool);
    add_bias(y, rows, (int)w->ne[1], b);
}

/* ---- attention and the blocks both stacks share ------------------------------------------- */

/* Every head of T query rows against S key/value rows (all rows n_state wide); query i sees
 * keys [0, causal_base + i], or all of them when causal_base < 0. */
static void attention(const float *q, const float *k, const float *v, float *out, int T, int S,
                      int n_state, int n_head, int causal_base, fl_pool *pool) {
    int dh = n_state / n_head;
    fl_attn a = {
        .q = q,
        .q_stride = (size_t)n_state,
        .k = k,
        .v = v,
        .kv_stride = (size_t)n_state,
        .out = out,
        .out_stride = (size_t)n_state,
        .n_q = T,
        .n_head = n_head,
        .n_head_kv = n_head,
        .head_dim = dh,
        .n_kv = S,
        .causal_base = causal_base,
        .scale = 1.0f / sqrtf((float)dh),
    };
    fl_attention(&a, pool);
}

/* Working rows of one pass through a stack: T rows of n each (mlp: 4n). */
typedef struct wh_rows {
    float *x, *h, *q, *k, *v, *a, *mlp;
    int T, n;
} wh_rows;

/* h = LN(x); q (and k, v when asked) projected from it. */
static void project(const wh_attn *w, wh_norm ln, const wh_rows *r, bool kv, fl_pool *pool) {
    layer_norm(r->x, r->h, r->T, r->n, ln);
    linear(&w->q, w->q_b, r->h, r->T, r->q, pool);
    if (!kv) return;
    linear(&w->k, NULL, r->h, r->T, r->k, pool);
    linear(&w->v, w->v_b, r->h, r->T, r->v, pool);
}

/* x += attention output (r->a) through the output projection. */
static void attention_out(const wh_attn *w, const wh_rows *r, fl_pool *pool) {
    linear(&w->o, w->o_b, r->a, r->T, r->h, pool);
    add_rows(r->x, r->h, (size_t)r->T * r->n);
}

/* x += MLP(LN(x)). */
static void mlp_block(const wh_block *b, const wh_rows *r, fl_pool *pool) {
    layer_norm(r->x, r->h, r->T, r->n, b->mlp_ln);
    linear(&b->mlp0, b->mlp0_b, r->h, r->T, r->mlp, pool);
    gelu(r->mlp, (size_t)r->T * r->n * 4);
    linear(&b->mlp2, b->mlp2_b, r->mlp, r->T, r->h, pool);
    add_rows(r->x, r->h, (size_t)r->T * r->n);
}

/* ---- encoder ----------------------------------------------------------------------------- */

/* Rows for a k=3, padding 1 convolution: col[t][i * 3 + k] = in(i, t * stride + k - 1), where
 * in(i, p) = src[i * ch_stride + p * pos_stride] for p in [0, n_in_pos). */
static void im2col(const float *src, size_t ch_stride, size_t pos_stride, int n_ch, int n_in_pos,
                   int stride, int n_out_pos, float *col) {
    for (int t = 0; t < n_out_pos; t++) {
        float *row = col + (size_t)t * n_ch * 3;
        for (int i = 0; i < n_ch; i++) {
            for (int k = 0; k < 3; k++) {
                int p = t * stride + k - 1;
                row[i * 3 + k] = p >= 0 && p < n_in_pos
                                     ? src[(size_t)i * ch_stride + (size_t)p * pos_stride]
                                     : 0.0f;
            }
        }
    }
}

static void free_bufs(float **bufs, int n) {
    for (int i = 0; i < n; i++) free(bufs[i]);
}

fluid_status wh_encode(wh_state *s, const float *mel, size_t stride, fl_pool *pool,
                       fluid_error *err) {
    const fluid_whisper *m = s->m;
    const wh_hparams *hp = &m->hp;
    int T = hp->n_audio_ctx, n = hp->n_audio_state, n_mels = hp->n_mels;
    int frames = 2 * T;
    size_t tn = (size_t)T * n;
    size_t col_floats = (size_t)frames * n_mels * 3;
    if ((size_t)T * n * 3 > col_floats) col_floats = (size_t)T * n * 3;
    float *bufs[8] = {
        malloc(col_floats * sizeof(float)), malloc((size_t)frames * n * sizeof(float)),
        malloc(tn * sizeof(float)),         malloc(tn * sizeof(float)),
        malloc(tn * sizeof(float)),         malloc(tn * sizeof(float)),
        malloc(tn * sizeof(float)),         malloc(tn * 4 * sizeof(float))};
    for (int i = 0; i < 8; i++) {
        if (!bufs[i]) {
            free_bufs(bufs, 8);
            return fl_set_error(err, FLUID_ERR_NOMEM, "whisper encoder: out of memory");
        }
    }
    float *col = bufs[0], *c1 = bufs[1], *h = bufs[2], *q = bufs[3], *k = bufs[4], *v = bufs[5],
          *a = bufs[6], *mlp = bufs[7];
    float *x = s->enc_out;
    /* conv1 over the mel frames, conv2 with stride 2, both followed by GELU */
    im2col(mel, stride, 1, n_mels, frames, 1, frames, col);
    linear(&m->conv1, m->conv1_b, col, frames, c1, pool);
    gelu(c1, (size_t)frames * n);
    im2col(c1, 1, (size_t)n, n, frames, 2, T, col);
    linear(&m->conv2, m->conv2_b, col, T, x, pool);
    gelu(x, tn);
    add_rows(x, m->enc_pos, tn);
    wh_rows rows = {x, h, q, k, v, a, mlp, T, n};
    for (int l = 0; l < hp->n_audio_layer; l++) {
        const wh_block *b = &m->enc[l];
        project(&b->attn, b->attn_ln, &rows, true, pool);
        attention(q, k, v, a, T, T, n, hp->n_audio_head, -1, pool);
        attention_out(&b->attn, &rows, pool);
        mlp_block(b, &rows, pool);
    }
    layer_norm(x, x, T, n, m->enc_ln);
    size_t cross = (size_t)T * hp->n_text_state;
    for (int l = 0; l < hp->n_text_layer; l++) {
        const wh_attn *ca = &m->dec[l].cross;
        linear(&ca->k, NULL, x, T, s->cross_k + l * cross, pool);
        linear(&ca->v, ca->v_b, x, T, s->cross_v + l * cross, pool);
    }
    free_bufs(bufs, 8);
    return FLUID_OK;
}

/* ---- decoder ----------------------------------------------------------------------------- */

/* Rows of one decoder call: row i is token tok[i] of sequence seq[i] at position pos[i]. Rows
 * of a sequence are consecutive with consecutive positions, starting at its n_past. */
typedef struct dec_rows {
    int n;
    const int *seq, *pos;
    const int32_t *tok;
} dec_rows;

static fluid_status check_rows(const wh_state *s, const dec_rows *r, fluid_error *err) {
    const wh_hparams *hp = &s->m->hp;
    for (int i = 0; i < r->n; i++) {
        if (r->seq[i] < 0 || r->seq[i] >= s->n_seq)
            return fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper decoder: bad sequence %d",
                                r->seq[i]);
        if (r->pos[i] >= hp->n_text_ctx)
            return fl_set_error(err, FLUID_ERR_CONTEXT_FULL,
                                "whisper decoder: position %d exceeds the context of %d", r->pos[i],
                                (int)hp->n_text_ctx);
        if (r->tok[i] < 0 || r->tok[i] >= hp->n_vocab)
            return fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper decoder: bad token %d",
                                (int)r->tok[i]);
    }
    return FLUID_OK;
}

/* Self-attention of every row: k/v rows go into their sequence's cache, then each run of rows
 * of one sequence attends causally to that cache. */
static void self_attention(wh_state *s, const dec_rows *r, int l, const wh_rows *w, fl_pool *pool) {
    const fluid_whisper *m = s->m;
    int n = m->hp.n_text_state;
    for (int i = 0; i < r->n; i++) {
        size_t at = (size_t)r->pos[i] * n;
        memcpy(self_cache(s->self_k, m, r->seq[i], l) + at, w->k + (size_t)i * n,
               n * sizeof(float));
        memcpy(self_cache(s->self_v, m, r->seq[i], l) + at, w->v + (size_t)i * n,
               n * sizeof(float));
    }
    for (int g0 = 0, g1; g0 < r->n; g0 = g1) {
        for (g1 = g0 + 1; g1 < r->n && r->seq[g1] == r->seq[g0]; g1++) continue;
        int seq = r->seq[g0], past = r->pos[g0], T = g1 - g0;
        attention(w->q + (size_t)g0 * n, self_cache(s->self_k, m, seq, l),
                  self_cache(s->self_v, m, seq, l), w->a + (size_t)g0 * n, T, past + T, n,
                  m->hp.n_text_head, past, pool);
    }
}

/* The decoder over the rows; logits of the last n_out rows go to out (n_out x n_vocab). */
static fluid_status decode_rows(wh_state *s, const dec_rows *r, int n_out, float *out,
                                fl_pool *pool, fluid_error *err) {
    const fluid_whisper *m = s->m;
    const wh_hparams *hp = &m->hp;
    int n = hp->n_text_state, T = r->n;
    fluid_status st = check_rows(s, r, err);
    if (st != FLUID_OK) return st;
    size_t tn = (size_t)T * n;
    float *bufs[7] = {malloc(tn * sizeof(float)),    malloc(tn * sizeof(float)),
                      malloc(tn * sizeof(float)),    malloc(tn * sizeof(float)),
                      malloc(tn * sizeof(float)),    malloc(tn * sizeof(float)),
                      malloc(tn * 4 * sizeof(float))};
    for (int i = 0; i < 7; i++) {
        if (!bufs[i]) {
            free_bufs(bufs, 7);
            return fl_set_error(err, FLUID_ERR_NOMEM, "whisper decoder: out of memory");
        }
    }
    float *x = bufs[0], *h = bufs[1], *q = bufs[2], *k = bufs[3], *v = bufs[4], *a = bufs[5],
          *mlp = bufs[6];
    for (int i = 0; i < T; i++) {
        fl_dequantize_row(&m->tok_emb, r->tok[i], x + (size_t)i * n);
        add_rows(x + (size_t)i * n, m->dec_pos + (size_t)r->pos[i] * n, (size_t)n);
    }
    size_t cross = (size_t)hp->n_audio_ctx * n;
    wh_rows rows = {x, h, q, k, v, a, mlp, T, n};
    for (int l = 0; l < hp->n_text_layer; l++) {
        const wh_block *b = &m->dec[l];
        project(&b->attn, b->attn_ln, &rows, true, pool);
        self_attention(s, r, l, &rows, pool);
        attention_out(&b->attn, &rows, pool);
        project(&b->cross, b->cross_ln, &rows, false, pool);
        attention(q, s->cross_k + l * cross, s->cross_v + l * cross, a, T, hp->n_audio_ctx, n,
                  hp->n_text_head, -1, pool);
        attention_out(&b->cross, &rows, pool);
        mlp_block(b, &rows, pool);
    }
    layer_norm(x + (size_t)(T - n_out) * n, h, n_out, n, m->dec_ln);
    fl_matmul(&m->tok_emb, h, n_out, out, pool);
    for (int i = 0; i < T; i++) s->n_past[r->seq[i]] = r->pos[i] + 1;
    free_bufs(bufs, 7);
    return FLUID_OK;
}

fluid_status wh_decode(wh_state *s, int seq, const int32_t *tokens, int n_tok, float *logits,
                       float *all_logits, fl_pool *pool, fluid_error *err) {
    if (n_tok <= 0 || seq < 0 || seq >= s->n_seq || (!logits && !all_logits))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper decoder: nothing to decode");
    int n_out = all_logits ? n_tok : 1;
    size_t nv = (size_t)s->m->hp.n_vocab;
    int *seqs = malloc((size_t)n_tok * sizeof(int)), *pos = malloc((size_t)n_tok * sizeof(int));
    float *out = all_logits ? all_logits : logits;
    fluid_status st = FLUID_OK;
    if (!seqs || !pos) st = fl_set_error(err, FLUID_ERR_NOMEM, "whisper decoder: out of memory");
    for (int i = 0; st == FLUID_OK && i < n_tok; i++) {
        seqs[i] = seq;
        pos[i] = s->n_past[seq] + i;
    }
    dec_rows r = {n_tok, seqs, pos, tokens};
    if (st == FLUID_OK) st = decode_rows(s, &r, n_out, out, pool, err);
    if (st == FLUID_OK && all_logits && logits)
        memcpy(logits, all_logits + (size_t)(n_tok - 1) * nv, nv * sizeof(float));
    free(seqs);
    free(pos);
    return st;
}

fluid_status wh_decode_step(wh_state *s, const int *seqs, const int32_t *tokens, int n,
                            float *logits, fl_pool *pool, fluid_error *err) {
    int *pos = malloc((size_t)(n > 0 ? n : 1) * sizeof(int));
    if (!pos) return fl_set_error(err, FLUID_ERR_NOMEM, "whisper decoder: out of memory");
    fluid_status st = FLUID_OK;
    for (int i = 0; i < n && st == FLUID_OK; i++) {
        if (seqs[i] < 0 || seqs[i] >= s->n_seq)
            st = fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper decoder: bad sequence");
        else
            pos[i] = s->n_past[seqs[i]];
        for (int j = 0; j < i && st == FLUID_OK; j++)
            if (seqs[j] == seqs[i])
                st = fl_set_error(err, FLUID_ERR_ARGUMENT, "whisper decoder: sequence twice");
    }
    dec_rows r = {n, seqs, pos, tokens};
    if (st == FLUID_OK && n > 0) st = decode_rows(s, &r, n, logits, pool, err);
    free(pos);
    return st;
}

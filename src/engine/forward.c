/* The transformer forward pass of the llama family (llama, qwen2, qwen3, phi3), one batch of
 * tokens at a time. Each step is written out plainly; every product with a weight matrix goes
 * through fl_matmul with the whole batch as rows. */
#include <math.h>
#include <stddef.h>

#include "engine/attention.h"
#include "engine/kernels.h"
#include "engine/model.h"
#include "engine/ops.h"

/* Row `t` of a batch buffer whose rows are `width` floats. */
static float *row(float *buf, int t, int width) {
    return buf + (size_t)t * (size_t)width;
}

static void add_bias(float *rows, const float *bias, int n, int width) {
    if (bias == NULL) return;
    for (int t = 0; t < n; t++) fl_add(row(rows, t, width), bias, width);
}

/* phi3: the fused projection's rows are q, then k, then v. */
static void split_qkv(fluid_session *s, int n) {
    const fl_hparams *hp = &s->model->hp;
    int qd = fl_hp_q_dim(hp), kvd = fl_hp_kv_dim(hp), width = qd + 2 * kvd;
    for (int t = 0; t < n; t++) {
        const float *src = row(s->fused, t, width);
        for (int i = 0; i < qd; i++) row(s->q, t, qd)[i] = src[i];
        for (int i = 0; i < kvd; i++) row(s->k, t, kvd)[i] = src[qd + i];
        for (int i = 0; i < kvd; i++) row(s->v, t, kvd)[i] = src[qd + kvd + i];
    }
}

static void project_qkv(fluid_session *s, const fl_layer *L, int n, fl_pool *pool) {
    const fl_hparams *hp = &s->model->hp;
    if (L->wqkv != NULL) {
        fl_matmul(L->wqkv, s->xb, n, s->fused, pool);
        split_qkv(s, n);
    } else {
        const fl_tensor *ws[3] = {L->wq, L->wk, L->wv};
        float *ys[3] = {s->q, s->k, s->v};
        fl_matmul_multi(ws, 3, s->xb, n, ys, pool);
    }
    add_bias(s->q, L->bq, n, fl_hp_q_dim(hp));
    add_bias(s->k, L->bk, n, fl_hp_kv_dim(hp));
    add_bias(s->v, L->bv, n, fl_hp_kv_dim(hp));
}

/* The RoPE angles of each token's position, once per batch (every layer uses them). */
static void rope_angles(fluid_session *s, int n) {
    const fl_hparams *hp = &s->model->hp;
    int pairs = hp->n_rot / 2;
    for (int t = 0; t < n; t++)
        fl_rope_angles(s->model->rope_inv_freq, pairs, (double)(s->n_past + t) * hp->rope_pos_scale,
                       row(s->rope_cos, t, pairs), row(s->rope_sin, t, pairs));
}

/* qwen3's per-head RMSNorm of q and k, then RoPE on both, at each token's position. */
static void position_qk(fluid_session *s, const fl_layer *L, int n) {
    const fl_hparams *hp = &s->model->hp;
    int hd = hp->head_dim, pairs = hp->n_rot / 2;
    for (int t = 0; t < n; t++) {
        float *q = row(s->q, t, fl_hp_q_dim(hp)), *k = row(s->k, t, fl_hp_kv_dim(hp));
        const float *cos_a = row(s->rope_cos, t, pairs), *sin_a = row(s->rope_sin, t, pairs);
        for (int h = 0; h < hp->n_head; h++) {
            float *head = q + (size_t)h * hd;
            if (L->q_norm) fl_rmsnorm(head, head, L->q_norm, hd, hp->norm_eps);
            fl_rope_rotate(head, pairs, cos_a, sin_a, hp->rope_neox);
        }
        for (int h = 0; h < hp->n_head_kv; h++) {
            float *head = k + (size_t)h * hd;
            if (L->k_norm) fl_rmsnorm(head, head, L->k_norm, hd, hp->norm_eps);
            fl_rope_rotate(head, pairs, cos_a, sin_a, hp->rope_neox);
        }
    }
}

static float *cache_row(const fluid_session *s, float *cache, int layer, int pos) {
    int kvd = fl_hp_kv_dim(&s->model->hp);
    return cache + ((size_t)layer * (size_t)s->n_ctx + (size_t)pos) * (size_t)kvd;
}

static void store_kv(fluid_session *s, int layer, int n) {
    int kvd = fl_hp_kv_dim(&s->model->hp);
    for (int t = 0; t < n; t++) {
        float *kc = cache_row(s, s->k_cache, layer, s->n_past + t);
        float *vc = cache_row(s, s->v_cache, layer, s->n_past + t);
        for (int i = 0; i < kvd; i++) kc[i] = row(s->k, t, kvd)[i];
        for (int i = 0; i < kvd; i++) vc[i] = row(s->v, t, kvd)[i];
    }
}

/* Causal grouped-query attention of the batch's queries over the layer's cache. */
static void attend(fluid_session *s, int il, int n, fl_pool *pool) {
    const fl_hparams *hp = &s->model->hp;
    fl_attn a = {
        .q = s->q,
        .q_stride = (size_t)fl_hp_q_dim(hp),
        .k = cache_row(s, s->k_cache, il, 0),
        .v = cache_row(s, s->v_cache, il, 0),
        .kv_stride = (size_t)fl_hp_kv_dim(hp),
        .out = s->att,
        .out_stride = (size_t)fl_hp_q_dim(hp),
        .n_q = n,
        .n_head = hp->n_head,
        .n_head_kv = hp->n_head_kv,
        .head_dim = hp->head_dim,
        .n_kv = s->n_past + n,
        .causal_base = s->n_past,
        .scale = 1.0f / sqrtf((float)hp->head_dim),
    };
    fl_attention(&a, pool);
}

static void attention_block(fluid_session *s, int il, int n, fl_pool *pool) {
    const fl_hparams *hp = &s->model->hp;
    const fl_layer *L = &s->model->layers[il];
    for (int t = 0; t < n; t++)
        fl_rmsnorm(row(s->xb, t, hp->n_embd), row(s->x, t, hp->n_embd), L->attn_norm, hp->n_embd,
                   hp->norm_eps);
    project_qkv(s, L, n, pool);
    position_qk(s, L, n);
    store_kv(s, il, n);
    attend(s, il, n, pool);
    fl_matmul(L->wo, s->att, n, s->xb, pool);
    fl_add(s->x, s->xb, n * hp->n_embd);
}

static void ffn_block(fluid_session *s, int il, int n, fl_pool *pool) {
    const fl_hparams *hp = &s->model->hp;
    const fl_layer *L = &s->model->layers[il];
    int ff = hp->n_ff;
    for (int t = 0; t < n; t++)
        fl_rmsnorm(row(s->xb, t, hp->n_embd), row(s->x, t, hp->n_embd), L->ffn_norm, hp->n_embd,
                   hp->norm_eps);
    if (L->w_gate_up != NULL) {
        fl_matmul(L->w_gate_up, s->xb, n, s->fused, pool);
        for (int t = 0; t < n; t++) {
            const float *gu = row(s->fused, t, 2 * ff);
            fl_swiglu(row(s->ffn, t, ff), gu, gu + ff, ff, pool);
        }
    } else {
        const fl_tensor *ws[2] = {L->w_gate, L->w_up};
        float *ys[2] = {s->ffn, s->fused};
        fl_matmul_multi(ws, 2, s->xb, n, ys, pool);
        fl_swiglu(s->ffn, s->ffn, s->fused, (long)n * ff, pool);
    }
    fl_matmul(L->w_down, s->ffn, n, s->xb, pool);
    fl_add(s->x, s->xb, n * hp->n_embd);
}

void fl_forward(fluid_session *s, const int32_t *tokens, int n, int n_out, float *logits,
                fl_pool *pool) {
    const fluid_model *m = s->model;
    const fl_hparams *hp = &m->hp;
    for (int t = 0; t < n; t++) fl_dequantize_row(m->tok_embd, tokens[t], row(s->x, t, hp->n_embd));
    rope_angles(s, n);
    for (int il = 0; il < hp->n_layer; il++) {
        attention_block(s, il, n, pool);
        ffn_block(s, il, n, pool);
    }
    if (n_out == 0) return;
    int first = n - n_out;
    for (int t = first; t < n; t++)
        fl_rmsnorm(row(s->xb, t, hp->n_embd), row(s->x, t, hp->n_embd), m->output_norm, hp->n_embd,
                   hp->norm_eps);
    fl_matmul(m->output, row(s->xb, first, hp->n_embd), n_out, logits, pool);
}

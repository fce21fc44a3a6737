/* Multi-head attention over many queries at once (prompts, Whisper's encoder and decoder):
 * out = softmax(q · kᵀ · scale) · v per query row and head, with grouped-query heads (the
 * query heads that share one key/value head are processed together, so each key and value row
 * is read once per group), blocks of keys with an online softmax (memory per thread is a few
 * blocks, whatever the context length) and work split over (head group, query block). */
#ifndef FLUID_ENGINE_ATTENTION_H
#define FLUID_ENGINE_ATTENTION_H

#include <stddef.h>

#include "engine/threadpool.h"

typedef struct fl_attn {
    const float *q; /* query t, head h: q + t * q_stride + h * head_dim */
    size_t q_stride;
    const float *k, *v; /* key j, key/value head g: k + j * kv_stride + g * head_dim */
    size_t kv_stride;
    float *out; /* laid out like q */
    size_t out_stride;
    int n_q, n_head, n_head_kv, head_dim; /* n_head a multiple of n_head_kv */
    int n_kv;                             /* keys 0 .. n_kv-1 exist */
    int causal_base; /* query t sees keys [0, causal_base + t] (< n_kv); < 0: all n_kv keys */
    float scale;
} fl_attn;

void fl_attention(const fl_attn *a, fl_pool *pool);

#endif

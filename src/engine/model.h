/* Engine-internal side of a language model: the hyper-parameters read from GGUF metadata and the
 * weight views of every layer, checked against them at load time. */
#ifndef FLUID_ENGINE_MODEL_H
#define FLUID_ENGINE_MODEL_H

#include "engine/gguf.h"
#include "engine/tensor.h"
#include "engine/threadpool.h"
#include "fluid/fluid.h"

typedef enum fl_arch {
    FL_ARCH_LLAMA, /* Llama 2/3, Mistral, SmolLM */
    FL_ARCH_QWEN2, /* + q/k/v biases, NeoX RoPE */
    FL_ARCH_QWEN3, /* + per-head q/k RMSNorm, NeoX RoPE */
    FL_ARCH_PHI3,  /* fused qkv and gate|up projections, NeoX RoPE */
} fl_arch;

typedef struct fl_hparams {
    int32_t n_vocab;
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;
    int32_t head_dim; /* key/value length of one head */
    int32_t n_rot;    /* leading dimensions of each head that RoPE rotates */
    float norm_eps;
    float rope_theta;
    float rope_pos_scale; /* linear RoPE scaling: positions are multiplied by 1/factor */
    bool rope_neox;       /* pairs (i, i + n_rot/2) instead of (2i, 2i + 1) */
} fl_hparams;

/* Weights of one decoder block. Norm weights and biases are converted to floats at load time;
 * the matrices stay views into the mapped file. Absent tensors are NULL. */
typedef struct fl_layer {
    const float *attn_norm; /* [n_embd] */
    const fl_tensor *wq, *wk, *wv;
    const fl_tensor *wqkv; /* phi3: q, k and v in one matrix */
    const float *bq, *bk, *bv;
    const float *q_norm, *k_norm; /* qwen3: [head_dim] */
    const fl_tensor *wo;
    const float *ffn_norm; /* [n_embd] */
    const fl_tensor *w_gate, *w_up;
    const fl_tensor *w_gate_up; /* phi3: gate rows then up rows */
    const fl_tensor *w_down;
} fl_layer;

struct fluid_model {
    gguf_file *file;
    fluid_vocab *vocab; /* NULL when the file has no tokenizer */
    fl_arch arch;
    const char *arch_name;
    fl_hparams hp;
    const fl_tensor *tok_embd;
    const fl_tensor *output; /* token_embd when the output is tied */
    const float *output_norm;
    float *rope_inv_freq; /* [n_rot/2]: the angle per position of each rotated pair */
    fl_layer *layers;
    float *small_weights; /* owns every float vector the layers point to */
    const char *type_name;
    uint64_t n_params;
};

/* Widths of the projections: all query heads, and all key (or value) heads. */
static inline int32_t fl_hp_q_dim(const fl_hparams *hp) {
    return hp->n_head * hp->head_dim;
}
static inline int32_t fl_hp_kv_dim(const fl_hparams *hp) {
    return hp->n_head_kv * hp->head_dim;
}

/* A session asked for 0 tokens gets the training context, capped here. */
#define FL_DEFAULT_MAX_CTX 4096
static inline int32_t fl_hp_session_ctx(const fl_hparams *hp, int32_t n_ctx) {
    if (n_ctx > 0) return n_ctx;
    return hp->n_ctx_train < FL_DEFAULT_MAX_CTX ? hp->n_ctx_train : FL_DEFAULT_MAX_CTX;
}
/* Floats of one of the K and V caches of a session of n_ctx tokens. */
static inline size_t fl_hp_kv_floats(const fl_hparams *hp, int32_t n_ctx) {
    return (size_t)hp->n_layer * (size_t)n_ctx * (size_t)fl_hp_kv_dim(hp);
}

/* fluid_model_load on a file gguf_open already mapped (tests change the file in between): the
 * model takes the file over and closes it on failure too. A file truncated meanwhile fails with
 * FLUID_ERR_IO "the file changed on disk while it was being loaded". */
fluid_model *fl_model_load_gguf(gguf_file *file, const char *path, fluid_error *err);

/* A sequence being decoded: its KV cache (F32, [n_layer][n_ctx][kv_dim] for keys and for
 * values), the scratch rows of one batch and the logits of the last decode call. */
struct fluid_session {
    const fluid_model *model;
    int32_t n_ctx;
    int32_t n_past;
    int32_t max_batch; /* tokens evaluated together; longer inputs are split */
    bool keep_all_logits;
    float *k_cache, *v_cache;
    /* scratch, max_batch rows each */
    float *x;     /* [n_embd] the residual stream */
    float *xb;    /* [n_embd] normed input of a block, then its output */
    float *q;     /* [q_dim] */
    float *k;     /* [kv_dim] */
    float *v;     /* [kv_dim] */
    float *att;   /* [q_dim] attention output */
    float *ffn;   /* [n_ff] silu(gate) * up */
    float *fused; /* [max(q_dim + 2 kv_dim, 2 n_ff)] outputs of a fused projection / of up */
    float *rope_cos, *rope_sin; /* [n_rot/2] angles of each token's position */
    /* logits of the last decode call: n_logits rows, of its last n_logits tokens */
    float *logits;
    size_t logits_cap; /* floats */
    int32_t n_logits;
    int32_t n_decoded; /* tokens of the last decode call */
};

/* Evaluates n (1..max_batch) tokens at positions n_past.. (which must fit in the cache): fills
 * the cache and writes the logits of the last n_out tokens (1 or n) to `logits`. Does not move
 * n_past. */
void fl_forward(fluid_session *s, const int32_t *tokens, int n, int n_out, float *logits,
                fl_pool *pool);

#endif

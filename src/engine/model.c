/* Loading a GGUF language model: hyper-parameters from metadata, every weight found by its
 * standard name and checked against them, so that the forward pass can trust every shape. */
#include "engine/model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/kernels.h"
#include "engine/vocab.h"
#include "util/error.h"

/* Sizes beyond these are certainly not a model this engine can hold; rejecting them early keeps
 * every product below far from overflow. */
enum { MAX_DIM = 1 << 20, MAX_LAYERS = 4096, MAX_VOCAB = 1 << 24, MAX_CTX = 1 << 24 };

typedef struct arch_desc {
    const char *name;
    fl_arch arch;
    bool rope_neox;
} arch_desc;

static const arch_desc ARCHS[] = {
    {"llama", FL_ARCH_LLAMA, false},
    {"qwen2", FL_ARCH_QWEN2, true},
    {"qwen3", FL_ARCH_QWEN3, true},
    {"phi3", FL_ARCH_PHI3, true},
};

/* State shared by the loading steps: the first failure is kept in err and the rest is skipped. */
typedef struct loader {
    fluid_model *m;
    const char *path;
    fluid_error *err;
    bool failed;
    size_t small_used, small_cap; /* floats of m->small_weights */
} loader;

__attribute__((format(printf, 3, 4))) static void fail(loader *ld, fluid_status code,
                                                       const char *fmt, ...) {
    if (ld->failed) return;
    ld->failed = true;
    char what[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fl_set_error(ld->err, code, "%s: %s", ld->path, what);
}

/* ---- metadata ---------------------------------------------------------------------------- */

static void arch_key(const loader *ld, const char *suffix, char *key, size_t size) {
    snprintf(key, size, "%s.%s", ld->m->arch_name, suffix);
}

/* After a typed read of key failed: a key of another type is an error, and so is a missing one
 * when it is required (else the caller takes its default). */
static void unreadable_key(loader *ld, const char *key, const char *type, bool required) {
    if (gguf_find_key(ld->m->file, key) >= 0)
        fail(ld, FLUID_ERR_FORMAT, "%s is not %s", key, type);
    else if (required)
        fail(ld, FLUID_ERR_FORMAT, "missing metadata key %s", key);
}

/* Reads an integer key of the architecture into [1, max]; absent keys give `fallback`, or fail
 * when fallback < 0 (required). */
static int32_t get_dim(loader *ld, const char *suffix, int64_t fallback, int64_t max) {
    char key[128];
    arch_key(ld, suffix, key, sizeof key);
    int64_t v;
    if (!gguf_get_i64(ld->m->file, key, &v)) {
        unreadable_key(ld, key, "an integer", fallback < 0);
        v = fallback;
    }
    if (!ld->failed && (v < 1 || v > max)) fail(ld, FLUID_ERR_FORMAT, "%s is out of range", key);
    return ld->failed ? 0 : (int32_t)v;
}

static float get_float(loader *ld, const char *suffix, float fallback, bool required) {
    char key[128];
    arch_key(ld, suffix, key, sizeof key);
    float v;
    if (!gguf_get_f32(ld->m->file, key, &v)) {
        unreadable_key(ld, key, "a number", required);
        v = fallback;
    }
    if (!ld->failed && !(v > 0.0f && isfinite(v)))
        fail(ld, FLUID_ERR_FORMAT, "%s must be positive", key);
    return v;
}

static void read_arch(loader *ld) {
    gguf_str s;
    if (!gguf_get_str(ld->m->file, "general.architecture", &s)) {
        fail(ld, FLUID_ERR_FORMAT, "missing metadata key general.architecture");
        return;
    }
    for (size_t i = 0; i < sizeof ARCHS / sizeof ARCHS[0]; i++) {
        if (s.len == strlen(ARCHS[i].name) && memcmp(s.ptr, ARCHS[i].name, s.len) == 0) {
            ld->m->arch = ARCHS[i].arch;
            ld->m->arch_name = ARCHS[i].name;
            ld->m->hp.rope_neox = ARCHS[i].rope_neox;
            return;
        }
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(s.len < 48 ? s.len : 48), s.ptr);
    fail(ld, FLUID_ERR_UNSUPPORTED, "architecture '%s' is not supported", name);
}

/* Linear scaling divides positions by the factor; "none" and absent keys leave them alone. */
static void read_rope_scaling(loader *ld) {
    fl_hparams *hp = &ld->m->hp;
    hp->rope_pos_scale = 1.0f;
    char key[128];
    arch_key(ld, "rope.scaling.type", key, sizeof key);
    gguf_str type;
    if (gguf_get_str(ld->m->file, key, &type)) {
        if (type.len == 4 && memcmp(type.ptr, "none", 4) == 0) return;
        if (!(type.len == 6 && memcmp(type.ptr, "linear", 6) == 0)) {
            char name[32];
            snprintf(name, sizeof name, "%.*s", (int)(type.len < 24 ? type.len : 24), type.ptr);
            fail(ld, FLUID_ERR_UNSUPPORTED, "RoPE scaling '%s' is not supported", name);
            return;
        }
        hp->rope_pos_scale = 1.0f / get_float(ld, "rope.scaling.factor", 1.0f, true);
    } else if (gguf_find_key(ld->m->file, key) >= 0) {
        fail(ld, FLUID_ERR_FORMAT, "%s is not a string", key);
    } else {
        /* older files state a linear factor without a type */
        hp->rope_pos_scale = 1.0f / get_float(ld, "rope.scale_linear", 1.0f, false);
    }
}

static void read_hparams(loader *ld) {
    fl_hparams *hp = &ld->m->hp;
    hp->n_ctx_train = get_dim(ld, "context_length", -1, MAX_CTX);
    hp->n_embd = get_dim(ld, "embedding_length", -1, MAX_DIM);
    hp->n_layer = get_dim(ld, "block_count", -1, MAX_LAYERS);
    hp->n_ff = get_dim(ld, "feed_forward_length", -1, MAX_DIM);
    hp->n_head = get_dim(ld, "attention.head_count", -1, MAX_DIM);
    if (ld->failed) return;
    hp->n_head_kv = get_dim(ld, "attention.head_count_kv", hp->n_head, MAX_DIM);
    int64_t default_head_dim = hp->n_embd % hp->n_head == 0 ? hp->n_embd / hp->n_head : -1;
    hp->head_dim = get_dim(ld, "attention.key_length", default_head_dim, MAX_DIM);
    int32_t value_dim = get_dim(ld, "attention.value_length", hp->head_dim, MAX_DIM);
    if (ld->failed) return;
    hp->n_rot = get_dim(ld, "rope.dimension_count", hp->head_dim, MAX_DIM);
    hp->norm_eps = get_float(ld, "attention.layer_norm_rms_epsilon", 1e-5f, true);
    hp->rope_theta = get_float(ld, "rope.freq_base", 10000.0f, false);
    read_rope_scaling(ld);
    if (ld->failed) return;
    if (value_dim != hp->head_dim)
        fail(ld, FLUID_ERR_UNSUPPORTED, "key and value heads of different lengths");
    else if (hp->n_head % hp->n_head_kv != 0)
        fail(ld, FLUID_ERR_FORMAT, "head_count is not a multiple of head_count_kv");
    else if (hp->n_rot % 2 != 0 || hp->n_rot > hp->head_dim)
        fail(ld, FLUID_ERR_FORMAT, "rope.dimension_count must be even and at most the head length");
    else if ((int64_t)hp->n_head * hp->head_dim > MAX_DIM)
        fail(ld, FLUID_ERR_FORMAT, "attention heads are too large");
}

/* ---- tensors ----------------------------------------------------------------------------- */

static const fl_tensor *find_tensor(loader *ld, const char *name, bool required) {
    if (ld->failed) return NULL;
    const fl_tensor *t = gguf_find_tensor(ld->m->file, name);
    if (t == NULL && required) fail(ld, FLUID_ERR_FORMAT, "missing tensor '%s'", name);
    if (t != NULL && !fl_kernels_support(t->type)) {
        const fl_type_traits *tr = fl_type_traits_of(t->type);
        fail(ld, FLUID_ERR_UNSUPPORTED, "tensor '%s' has type %s, which this engine cannot run",
             name, tr ? tr->name : "unknown");
    }
    return ld->failed ? NULL : t;
}

static void check_shape(loader *ld, const char *name, const fl_tensor *t, int64_t ne0,
                        int64_t ne1) {
    if (t == NULL || ld->failed) return;
    if (t->ne[0] == ne0 && t->ne[1] == ne1 && t->ne[2] == 1 && t->ne[3] == 1) return;
    fail(ld, FLUID_ERR_FORMAT,
         "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
         (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
         (long long)ne0, (long long)ne1);
}

/* A matrix of `rows` outputs over `cols` inputs (ne = {cols, rows}). */
static const fl_tensor *get_matrix(loader *ld, const char *name, int64_t cols, int64_t rows,
                                   bool required) {
    const fl_tensor *t = find_tensor(ld, name, required);
    check_shape(ld, name, t, cols, rows);
    return ld->failed ? NULL : t;
}

/* A vector (norm weight, bias, RoPE divisors), converted to floats owned by the model. */
static const float *get_vector(loader *ld, const char *name, int64_t n, bool required) {
    const fl_tensor *t = find_tensor(ld, name, required);
    check_shape(ld, name, t, n, 1);
    if (t == NULL || ld->failed) return NULL;
    if (ld->small_used + (size_t)n > ld->small_cap) {
        fail(ld, FLUID_ERR_FORMAT, "too many vectors (tensor '%s')", name);
        return NULL;
    }
    float *dst = ld->m->small_weights + ld->small_used;
    ld->small_used += (size_t)n;
    fl_dequantize_row(t, 0, dst);
    return dst;
}

static void layer_name(char *buf, size_t size, int il, const char *suffix) {
    snprintf(buf, size, "blk.%d.%s", il, suffix);
}

static void load_layer(loader *ld, int il) {
    const fl_hparams *hp = &ld->m->hp;
    fl_layer *L = &ld->m->layers[il];
    int64_t e = hp->n_embd, q = fl_hp_q_dim(hp), kv = fl_hp_kv_dim(hp), ff = hp->n_ff;
    char n[96];
#define NAME(suffix) (layer_name(n, sizeof n, il, suffix), n)
    L->attn_norm = get_vector(ld, NAME("attn_norm.weight"), e, true);
    if (ld->m->arch == FL_ARCH_PHI3) {
        L->wqkv = get_matrix(ld, NAME("attn_qkv.weight"), e, q + 2 * kv, true);
    } else {
        L->wq = get_matrix(ld, NAME("attn_q.weight"), e, q, true);
        L->wk = get_matrix(ld, NAME("attn_k.weight"), e, kv, true);
        L->wv = get_matrix(ld, NAME("attn_v.weight"), e, kv, true);
    }
    if (ld->m->arch == FL_ARCH_QWEN2) {
        L->bq = get_vector(ld, NAME("attn_q.bias"), q, true);
        L->bk = get_vector(ld, NAME("attn_k.bias"), kv, true);
        L->bv = get_vector(ld, NAME("attn_v.bias"), kv, true);
    }
    if (ld->m->arch == FL_ARCH_QWEN3) {
        L->q_norm = get_vector(ld, NAME("attn_q_norm.weight"), hp->head_dim, true);
        L->k_norm = get_vector(ld, NAME("attn_k_norm.weight"), hp->head_dim, true);
    }
    L->wo = get_matrix(ld, NAME("attn_output.weight"), q, e, true);
    L->ffn_norm = get_vector(ld, NAME("ffn_norm.weight"), e, true);
    if (ld->m->arch == FL_ARCH_PHI3) {
        L->w_gate_up = get_matrix(ld, NAME("ffn_up.weight"), e, 2 * ff, true);
    } else {
        L->w_gate = get_matrix(ld, NAME("ffn_gate.weight"), e, ff, true);
        L->w_up = get_matrix(ld, NAME("ffn_up.weight"), e, ff, true);
    }
    L->w_down = get_matrix(ld, NAME("ffn_down.weight"), ff, e, true);
#undef NAME
}

/* Angle per position of each rotated pair: theta^(-2i/n_rot), divided by the optional
 * per-frequency factors of Llama 3 ("rope_freqs.weight"). */
static void load_rope(loader *ld) {
    const fl_hparams *hp = &ld->m->hp;
    int pairs = hp->n_rot / 2;
    ld->m->rope_inv_freq = malloc((size_t)(pairs > 0 ? pairs : 1) * sizeof(float));
    if (ld->m->rope_inv_freq == NULL) {
        fail(ld, FLUID_ERR_NOMEM, "out of memory");
        return;
    }
    const float *divisors = get_vector(ld, "rope_freqs.weight", pairs, false);
    for (int i = 0; i < pairs && !ld->failed; i++) {
        double f = pow((double)hp->rope_theta, -2.0 * i / hp->n_rot);
        if (divisors != NULL) {
            if (!(divisors[i] > 0.0f && isfinite(divisors[i]))) {
                fail(ld, FLUID_ERR_FORMAT, "rope_freqs.weight holds a non-positive value");
                return;
            }
            f /= divisors[i];
        }
        ld->m->rope_inv_freq[i] = (float)f;
    }
}

static void load_tensors(loader *ld) {
    fluid_model *m = ld->m;
    const fl_hparams *hp = &m->hp;
    /* every float vector: per layer 2 norms, q/k/v biases, q/k norms; output norm; RoPE */
    size_t per_layer = 2 * (size_t)hp->n_embd + (size_t)fl_hp_q_dim(hp) +
                       2 * (size_t)fl_hp_kv_dim(hp) + 2 * (size_t)hp->head_dim;
    ld->small_cap = per_layer * (size_t)hp->n_layer + (size_t)hp->n_embd + (size_t)hp->n_rot;
    m->small_weights = malloc(ld->small_cap * sizeof(float));
    m->layers = calloc((size_t)hp->n_layer, sizeof(fl_layer));
    if (m->small_weights == NULL || m->layers == NULL) {
        fail(ld, FLUID_ERR_NOMEM, "out of memory");
        return;
    }
    m->tok_embd = find_tensor(ld, "token_embd.weight", true);
    if (m->tok_embd == NULL) return;
    if (m->tok_embd->ne[1] < 1 || m->tok_embd->ne[1] > MAX_VOCAB) {
        fail(ld, FLUID_ERR_FORMAT, "token_embd.weight has an unusable vocabulary size");
        return;
    }
    m->hp.n_vocab = (int32_t)m->tok_embd->ne[1];
    check_shape(ld, "token_embd.weight", m->tok_embd, hp->n_embd, hp->n_vocab);
    char key[128];
    arch_key(ld, "vocab_size", key, sizeof key);
    int64_t declared;
    if (gguf_get_i64(m->file, key, &declared) && declared != hp->n_vocab)
        fail(ld, FLUID_ERR_FORMAT, "%s disagrees with token_embd.weight", key);
    m->output_norm = get_vector(ld, "output_norm.weight", hp->n_embd, true);
    m->output = get_matrix(ld, "output.weight", hp->n_embd, hp->n_vocab, false);
    if (m->output == NULL) m->output = m->tok_embd; /* tied embeddings */
    load_rope(ld);
    for (int il = 0; il < hp->n_layer && !ld->failed; il++) load_layer(ld, il);
}

/* Parameter count and the type of most matrix elements (the model's "quantization"). */
static void summarise(fluid_model *m) {
    uint64_t elements_by_type[FL_TYPE_COUNT] = {0};
    int64_t n = gguf_n_tensors(m->file);
    for (int64_t i = 0; i < n; i++) {
        const fl_tensor *t = gguf_tensor(m->file, i);
        m->n_params += (uint64_t)fl_tensor_nelements(t);
        if (t->n_dims >= 2 && (unsigned)t->type < FL_TYPE_COUNT)
            elements_by_type[t->type] += (uint64_t)fl_tensor_nelements(t);
    }
    int best = FL_TYPE_F32;
    for (int ty = 0; ty < FL_TYPE_COUNT; ty++)
        if (elements_by_type[ty] > elements_by_type[best]) best = ty;
    const fl_type_traits *tr = fl_type_traits_of((uint32_t)best);
    m->type_name = tr ? tr->name : "unknown";
}

static void load_vocab(loader *ld) {
    if (ld->failed || gguf_find_key(ld->m->file, "tokenizer.ggml.model") < 0) return;
    ld->m->vocab = fl_vocab_from_gguf(ld->m->file, ld->err);
    if (ld->m->vocab == NULL) {
        ld->failed = true;
        return;
    }
    if (fluid_vocab_size(ld->m->vocab) > ld->m->hp.n_vocab)
        fail(ld, FLUID_ERR_FORMAT, "the tokenizer has more tokens than token_embd.weight has rows");
}

/* A file truncated under the loader reads as zeros from there on (util/mapguard.h): whatever
 * failed (or seemed to work) then, the truncation is the error to report. */
static void check_damage(loader *ld) {
    if (!gguf_damaged(ld->m->file)) return;
    ld->failed = false; /* replace an error the zeros caused */
    fail(ld, FLUID_ERR_IO, "the file changed on disk while it was being loaded");
}

/* Reads the architecture and hyper-parameters of an opened file, which the model takes over
 * (closed on failure too); ld is the loader to go on with. NULL (err set) on failure. */
static fluid_model *open_model_file(gguf_file *file, const char *path, loader *ld,
                                    fluid_error *err) {
    fluid_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        gguf_close(file);
        fl_set_error(err, FLUID_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    m->file = file;
    *ld = (loader){.m = m, .path = path, .err = err};
    read_arch(ld);
    if (!ld->failed) read_hparams(ld);
    check_damage(ld);
    if (ld->failed) {
        fluid_model_free(m);
        return NULL;
    }
    return m;
}

static gguf_file *open_file(const char *path, fluid_error *err) {
    if (path == NULL) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "fluid_model_load: no path");
        return NULL;
    }
    if (access(path, R_OK) != 0) {
        fl_set_error(err, FLUID_ERR_IO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char msg[256];
    gguf_file *file = gguf_open(path, msg, sizeof msg);
    if (file == NULL) fl_set_error(err, FLUID_ERR_FORMAT, "%s: %s", path, msg);
    return file;
}

/* Maps the file and reads its architecture and hyper-parameters (see open_model_file). */
static fluid_model *open_model(const char *path, loader *ld, fluid_error *err) {
    gguf_file *file = open_file(path, err);
    return file != NULL ? open_model_file(file, path, ld, err) : NULL;
}

fluid_model *fl_model_load_gguf(gguf_file *file, const char *path, fluid_error *err) {
    loader ld;
    fluid_model *m = open_model_file(file, path, &ld, err);
    if (m == NULL) return NULL;
    load_tensors(&ld);
    load_vocab(&ld);
    check_damage(&ld);
    if (ld.failed) {
        fluid_model_free(m);
        return NULL;
    }
    summarise(m);
    return m;
}

fluid_model *fluid_model_load(const char *path, fluid_error *err) {
    gguf_file *file = open_file(path, err);
    return file != NULL ? fl_model_load_gguf(file, path, err) : NULL;
}

fluid_status fluid_model_context_bytes(const char *path, int32_t n_ctx, uint64_t *bytes,
                                       fluid_error *err) {
    *bytes = 0;
    if (n_ctx < 0) return fl_set_error(err, FLUID_ERR_ARGUMENT, "n_ctx must not be negative");
    loader ld;
    fluid_model *m = open_model(path, &ld, err);
    if (m == NULL) return err != NULL ? err->code : FLUID_ERR_FORMAT;
    *bytes = 2 * fl_hp_kv_floats(&m->hp, fl_hp_session_ctx(&m->hp, n_ctx)) * sizeof(float);
    fluid_model_free(m);
    return FLUID_OK;
}

void fluid_model_free(fluid_model *model) {
    if (model == NULL) return;
    fluid_vocab_free(model->vocab);
    gguf_close(model->file);
    free(model->rope_inv_freq);
    free(model->layers);
    free(model->small_weights);
    free(model);
}

bool fluid_model_file_damaged(const fluid_model *model) {
    return model != NULL && gguf_damaged(model->file);
}

const fluid_vocab *fluid_model_vocab(const fluid_model *model) {
    return model ? model->vocab : NULL;
}

void fluid_model_get_info(const fluid_model *model, fluid_model_info *info) {
    if (info == NULL) return;
    memset(info, 0, sizeof *info);
    if (model == NULL) return;
    const fl_hparams *hp = &model->hp;
    info->arch = model->arch_name;
    info->type_name = model->type_name;
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_params = model->n_params;
    info->file_bytes = gguf_file_size(model->file);
}

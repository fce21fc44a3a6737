/* Random-weight llama-family models. Tensors are produced while the file is written (one
 * chunk of rows at a time), so even multi-GB models need little memory. */
#include "fluid-synth/llm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "fluid-synth/random.h"
#include "fluid-synth/vocab.h"

typedef struct preset {
    const char *name;
    int64_t n_embd, n_layer, n_head, n_head_kv;
    int64_t head_dim;       /* 0: n_embd / n_head */
    int64_t qwen3_head_dim; /* used instead when the arch is qwen3 (0: as above) */
    int64_t n_ff, n_ctx;
    float theta, eps;
    bool tied;
    bool llama3_rope; /* write rope_freqs.weight for Llama 3 "llama3" scaling */
} preset;

static const preset PRESETS[] = {
    {"tiny", 64, 2, 4, 2, 0, 32, 160, 512, 10000.0f, 1e-5f, false, false},
    {"qwen2.5-0.5b", 896, 24, 14, 2, 0, 0, 4864, 32768, 1e6f, 1e-6f, true, false},
    {"llama-3.2-1b", 2048, 16, 32, 8, 0, 0, 8192, 131072, 5e5f, 1e-5f, true, true},
    {"qwen3-0.6b", 1024, 28, 16, 8, 128, 0, 3072, 40960, 1e6f, 1e-6f, true, false},
};
#define N_PRESETS (sizeof PRESETS / sizeof PRESETS[0])

/* Llama 3.1/3.2 rope scaling parameters (for rope_freqs.weight). */
#define LLAMA3_FACTOR 32.0
#define LLAMA3_LOW_FREQ_FACTOR 1.0
#define LLAMA3_HIGH_FREQ_FACTOR 4.0
#define LLAMA3_ORIGINAL_CONTEXT 8192.0

static const char *const ARCHS[] = {"llama", "qwen2", "qwen3", "phi3"};
#define N_ARCHS (sizeof ARCHS / sizeof ARCHS[0])

/* Floats generated per chunk while streaming a tensor. */
#define CHUNK_FLOATS (1 << 18)

static const preset *find_preset(const char *name) {
    for (size_t i = 0; i < N_PRESETS; i++) {
        if (strcmp(PRESETS[i].name, name) == 0) return &PRESETS[i];
    }
    return NULL;
}

bool synth_llm_preset_known(const char *name) {
    return find_preset(name) != NULL;
}

bool synth_llm_arch_known(const char *arch) {
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (strcmp(ARCHS[i], arch) == 0) return true;
    }
    return false;
}

void synth_llm_print_archs(FILE *fp) {
    for (size_t i = 0; i < N_ARCHS; i++) fprintf(fp, "%s%s", i ? "|" : "", ARCHS[i]);
}

void synth_llm_print_presets(FILE *fp) {
    for (size_t i = 0; i < N_PRESETS; i++) fprintf(fp, "%s%s", i ? "|" : "", PRESETS[i].name);
}

/* The model's dimensions once preset, architecture and vocabulary are known. */
typedef struct shape {
    const preset *p;
    const char *arch;
    int64_t n_vocab, n_layer, head_dim, q_dim, kv_dim;
} shape;

static shape make_shape(const preset *p, const synth_llm_options *o, int64_t n_vocab) {
    const char *arch = o->arch;
    shape s = {p, arch, n_vocab, o->n_layer > 0 ? o->n_layer : p->n_layer, p->n_embd / p->n_head,
               0, 0};
    if (p->head_dim > 0) s.head_dim = p->head_dim;
    if (strcmp(arch, "qwen3") == 0 && p->qwen3_head_dim > 0) s.head_dim = p->qwen3_head_dim;
    s.q_dim = p->n_head * s.head_dim;
    s.kv_dim = p->n_head_kv * s.head_dim;
    return s;
}

static bool is_arch(const shape *s, const char *arch) {
    return strcmp(s->arch, arch) == 0;
}

/* ---- metadata ---- */

static bool set_arch_u32(gguf_writer *w, const shape *s, const char *suffix, int64_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    return gguf_writer_set_u32(w, key, (uint32_t)v);
}

static bool set_arch_f32(gguf_writer *w, const shape *s, const char *suffix, float v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", s->arch, suffix);
    return gguf_writer_set_f32(w, key, v);
}

static bool write_metadata(gguf_writer *w, const synth_llm_options *o, const shape *s) {
    const preset *p = s->p;
    char name[128];
    snprintf(name, sizeof name, "fluid-synth %s %s %s seed %llu", s->arch, p->name,
             fl_ftype_name(o->ftype), (unsigned long long)o->seed);
    bool ok = gguf_writer_set_str(w, "general.architecture", s->arch) &&
              gguf_writer_set_str(w, "general.name", name) &&
              gguf_writer_set_u32(w, "general.file_type", (uint32_t)o->ftype) &&
              set_arch_u32(w, s, "context_length", p->n_ctx) &&
              set_arch_u32(w, s, "embedding_length", p->n_embd) &&
              set_arch_u32(w, s, "block_count", s->n_layer) &&
              set_arch_u32(w, s, "feed_forward_length", p->n_ff) &&
              set_arch_u32(w, s, "attention.head_count", p->n_head) &&
              set_arch_u32(w, s, "attention.head_count_kv", p->n_head_kv) &&
              set_arch_f32(w, s, "attention.layer_norm_rms_epsilon", p->eps) &&
              set_arch_f32(w, s, "rope.freq_base", p->theta) &&
              set_arch_u32(w, s, "rope.dimension_count", s->head_dim) &&
              set_arch_u32(w, s, "vocab_size", s->n_vocab);
    if (ok && (is_arch(s, "qwen3") || s->head_dim != p->n_embd / p->n_head)) {
        ok = set_arch_u32(w, s, "attention.key_length", s->head_dim) &&
             set_arch_u32(w, s, "attention.value_length", s->head_dim);
    }
    return ok;
}

/* ---- tensors ---- */

typedef enum fill_kind { FILL_NORMAL, FILL_ONES, FILL_ROPE_FREQS } fill_kind;

/* One tensor to write, with what its producer needs. */
typedef struct tensor_plan {
    char name[64];
    fl_type type;
    int n_dims;
    int64_t ne[2];
    fill_kind fill;
    const synth_llm_options *o;
    const shape *s;
} tensor_plan;

typedef struct plan_list {
    tensor_plan *items;
    size_t n, cap;
} plan_list;

static void add_plan(plan_list *l, const synth_llm_options *o, const shape *s, const char *name,
                     int64_t ne0, int64_t ne1, fill_kind fill) {
    tensor_plan *t = &l->items[l->n++]; /* the list is sized for the largest model up front */
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = ne1 > 0 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1 > 0 ? ne1 : 1;
    t->fill = fill;
    t->o = o;
    t->s = s;
    fl_mixture_model mix = {.n_layer = (int)s->n_layer, .has_output = !s->p->tied};
    t->type = synth_tensor_type(o->ftype, name, t->n_dims, ne0, &mix);
}

static void add_layer_plans(plan_list *l, const synth_llm_options *o, const shape *s, int il) {
    const preset *p = s->p;
    char name[64];
#define LAYER(suffix, ne0, ne1, fill)                                                              \
    do {                                                                                           \
        snprintf(name, sizeof name, "blk.%d.%s", il, suffix);                                      \
        add_plan(l, o, s, name, ne0, ne1, fill);                                                   \
    } while (0)
    LAYER("attn_norm.weight", p->n_embd, 0, FILL_ONES);
    if (is_arch(s, "phi3")) {
        LAYER("attn_qkv.weight", p->n_embd, s->q_dim + 2 * s->kv_dim, FILL_NORMAL);
    } else {
        LAYER("attn_q.weight", p->n_embd, s->q_dim, FILL_NORMAL);
        LAYER("attn_k.weight", p->n_embd, s->kv_dim, FILL_NORMAL);
        LAYER("attn_v.weight", p->n_embd, s->kv_dim, FILL_NORMAL);
    }
    if (is_arch(s, "qwen2")) {
        LAYER("attn_q.bias", s->q_dim, 0, FILL_NORMAL);
        LAYER("attn_k.bias", s->kv_dim, 0, FILL_NORMAL);
        LAYER("attn_v.bias", s->kv_dim, 0, FILL_NORMAL);
    }
    if (is_arch(s, "qwen3")) {
        LAYER("attn_q_norm.weight", s->head_dim, 0, FILL_ONES);
        LAYER("attn_k_norm.weight", s->head_dim, 0, FILL_ONES);
    }
    LAYER("attn_output.weight", s->q_dim, p->n_embd, FILL_NORMAL);
    LAYER("ffn_norm.weight", p->n_embd, 0, FILL_ONES);
    if (is_arch(s, "phi3")) {
        LAYER("ffn_up.weight", p->n_embd, 2 * p->n_ff, FILL_NORMAL);
    } else {
        LAYER("ffn_gate.weight", p->n_embd, p->n_ff, FILL_NORMAL);
        LAYER("ffn_up.weight", p->n_embd, p->n_ff, FILL_NORMAL);
    }
    LAYER("ffn_down.weight", p->n_ff, p->n_embd, FILL_NORMAL);
#undef LAYER
}

#define MAX_TENSORS_PER_LAYER 16
#define MAX_GLOBAL_TENSORS 8

static bool make_plans(plan_list *l, const synth_llm_options *o, const shape *s) {
    const preset *p = s->p;
    l->cap = (size_t)s->n_layer * MAX_TENSORS_PER_LAYER + MAX_GLOBAL_TENSORS;
    l->items = calloc(l->cap, sizeof *l->items);
    if (l->items == NULL) return false;
    add_plan(l, o, s, "token_embd.weight", p->n_embd, s->n_vocab, FILL_NORMAL);
    if (p->llama3_rope) add_plan(l, o, s, "rope_freqs.weight", s->head_dim / 2, 0, FILL_ROPE_FREQS);
    add_plan(l, o, s, "output_norm.weight", p->n_embd, 0, FILL_ONES);
    if (!p->tied) add_plan(l, o, s, "output.weight", p->n_embd, s->n_vocab, FILL_NORMAL);
    for (int il = 0; il < s->n_layer; il++) add_layer_plans(l, o, s, il);
    return true;
}

/* Divisor of rotation frequency i under Llama 3 scaling: 1 for high frequencies, the full
 * factor for low ones, and a smooth blend between. */
static float llama3_rope_divisor(const shape *s, int64_t i) {
    double freq = pow((double)s->p->theta, -2.0 * (double)i / (double)s->head_dim);
    double wavelen = 2.0 * M_PI / freq;
    double low_freq_wavelen = LLAMA3_ORIGINAL_CONTEXT / LLAMA3_LOW_FREQ_FACTOR;
    double high_freq_wavelen = LLAMA3_ORIGINAL_CONTEXT / LLAMA3_HIGH_FREQ_FACTOR;
    if (wavelen < high_freq_wavelen) return 1.0f;
    if (wavelen > low_freq_wavelen) return (float)LLAMA3_FACTOR;
    double smooth = (LLAMA3_ORIGINAL_CONTEXT / wavelen - LLAMA3_LOW_FREQ_FACTOR) /
                    (LLAMA3_HIGH_FREQ_FACTOR - LLAMA3_LOW_FREQ_FACTOR);
    return (float)(1.0 / ((1.0 - smooth) / LLAMA3_FACTOR + smooth));
}

static void fill_values(const tensor_plan *t, synth_rng *rng, int64_t first, float *dst,
                        int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (t->fill) {
        case FILL_NORMAL:
            dst[i] = (float)(synth_rng_normal(rng) * t->o->std);
            break;
        case FILL_ONES:
            dst[i] = 1.0f;
            break;
        case FILL_ROPE_FREQS:
            dst[i] = llama3_rope_divisor(t->s, first + i);
            break;
        }
    }
}

/* Streams a tensor's rows, a chunk at a time. */
static bool produce_tensor(void *ctx, gguf_sink *sink) {
    const tensor_plan *t = ctx;
    int64_t ne0 = t->ne[0], rows = t->ne[1];
    size_t row_bytes = fl_row_bytes(t->type, ne0);
    int64_t chunk_rows = CHUNK_FLOATS / ne0 > 0 ? CHUNK_FLOATS / ne0 : 1;
    if (chunk_rows > rows) chunk_rows = rows;
    float *values = malloc((size_t)(chunk_rows * ne0) * sizeof *values);
    uint8_t *encoded = malloc((size_t)chunk_rows * row_bytes);
    bool ok = values != NULL && encoded != NULL;
    if (!ok) gguf_sink_fail(sink, "out of memory");
    synth_rng rng;
    synth_rng_seed(&rng, t->o->seed, t->name);
    for (int64_t r = 0; ok && r < rows; r += chunk_rows) {
        int64_t n_rows = rows - r < chunk_rows ? rows - r : chunk_rows;
        fill_values(t, &rng, r * ne0, values, n_rows * ne0);
        for (int64_t i = 0; ok && i < n_rows; i++) {
            ok = synth_encode_row(t->type, values + i * ne0, ne0, encoded + i * row_bytes);
        }
        if (!ok) gguf_sink_fail(sink, "cannot encode this tensor type");
        ok = ok && gguf_sink_write(sink, encoded, (size_t)n_rows * row_bytes);
    }
    free(values);
    free(encoded);
    return ok;
}

static bool add_tensors(gguf_writer *w, const plan_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        tensor_plan *t = &l->items[i];
        if (!gguf_writer_add_tensor_stream(w, t->name, t->type, t->n_dims, t->ne, produce_tensor,
                                           t)) {
            fprintf(stderr, "fluid-synth: cannot add tensor %s\n", t->name);
            return false;
        }
    }
    return true;
}

bool synth_llm(const synth_llm_options *o) {
    const preset *p = find_preset(o->preset);
    if (p == NULL || !synth_llm_arch_known(o->arch)) {
        fprintf(stderr, "fluid-synth: unknown architecture or preset\n");
        return false;
    }
    gguf_writer *w = gguf_writer_create();
    if (w == NULL) {
        fprintf(stderr, "fluid-synth: out of memory\n");
        return false;
    }
    char err[600];
    int64_t n_vocab = o->vocab_path ? synth_vocab_copy(w, o->vocab_path, err, sizeof err)
                                    : synth_vocab_builtin(w, err, sizeof err);
    bool ok = n_vocab > 0;
    if (!ok) fprintf(stderr, "fluid-synth: %s\n", err);
    shape s = make_shape(p, o, n_vocab + o->n_pad_vocab);
    plan_list plans = {0};
    if (ok && (!write_metadata(w, o, &s) || !make_plans(&plans, o, &s))) {
        fprintf(stderr, "fluid-synth: out of memory\n");
        ok = false;
    }
    ok = ok && add_tensors(w, &plans);
    if (ok && !gguf_writer_write(w, o->out_path, err, sizeof err)) {
        fprintf(stderr, "fluid-synth: %s\n", err);
        ok = false;
    }
    if (ok) {
        printf("wrote %s: %s %s, %s, %lld tokens, %zu tensors\n", o->out_path, o->arch, p->name,
               fl_ftype_name(o->ftype), (long long)n_vocab, plans.n);
    }
    free(plans.items);
    gguf_writer_free(w);
    return ok;
}

#include "support/tiny_llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"

enum { N_FF = 48 };

typedef struct tiny_writer {
    gguf_writer *w;
    const tiny_llm_options *o;
    uint64_t rng;
    bool ok;
} tiny_writer;

/* Uniform in [-0.1, 0.1): a fixed sequence, so models are reproducible. */
static float next_weight(tiny_writer *t) {
    t->rng = t->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((t->rng >> 40) / (double)(1ULL << 24) - 0.5) * 0.2f;
}

static bool is(const char *a, const char *b) {
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Adds a tensor of cols x rows (rows = 1: a vector, always F32 and filled with `fill` when it is
 * not zero, else random). */
static void add(tiny_writer *t, const char *name, int64_t cols, int64_t rows, float fill) {
    if (!t->ok || is(name, t->o->omit_tensor)) return;
    if (is(name, t->o->widen_tensor)) cols++;
    fl_type type = rows == 1 ? FL_TYPE_F32 : t->o->type;
    if (is(name, t->o->retype_tensor)) type = FL_TYPE_I32;
    size_t n = (size_t)(cols * rows), bytes = fl_row_bytes(type, cols) * (size_t)rows;
    unsigned char *data = malloc(bytes);
    if (data == NULL) {
        t->ok = false;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float v = fill != 0.0f ? fill : next_weight(t);
        if (type == FL_TYPE_F32 || type == FL_TYPE_I32) {
            memcpy(data + 4 * i, &v, 4);
        } else {
            uint16_t h = type == FL_TYPE_F16 ? fl_f32_to_f16(v) : fl_f32_to_bf16(v);
            memcpy(data + 2 * i, &h, 2);
        }
    }
    int64_t ne[2] = {cols, rows};
    t->ok = gguf_writer_add_tensor(t->w, name, type, rows == 1 ? 1 : 2, ne, data, bytes);
    free(data);
}

static void add_layer(tiny_writer *t, int il, int64_t q, int64_t kv) {
    const char *arch = t->o->arch;
    int64_t e = TINY_LLM_EMBD;
    char n[64];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d.%s", il, s), n)
    add(t, NAME("attn_norm.weight"), e, 1, 1.0f);
    if (is(arch, "phi3")) {
        add(t, NAME("attn_qkv.weight"), e, q + 2 * kv, 0);
    } else {
        add(t, NAME("attn_q.weight"), e, q, 0);
        add(t, NAME("attn_k.weight"), e, kv, 0);
        add(t, NAME("attn_v.weight"), e, kv, 0);
    }
    if (is(arch, "qwen2")) {
        add(t, NAME("attn_q.bias"), q, 1, 0.01f);
        add(t, NAME("attn_k.bias"), kv, 1, 0.01f);
        add(t, NAME("attn_v.bias"), kv, 1, 0.01f);
    }
    if (is(arch, "qwen3")) {
        add(t, NAME("attn_q_norm.weight"), q / TINY_LLM_HEADS, 1, 1.0f);
        add(t, NAME("attn_k_norm.weight"), q / TINY_LLM_HEADS, 1, 1.0f);
    }
    add(t, NAME("attn_output.weight"), q, e, 0);
    add(t, NAME("ffn_norm.weight"), e, 1, 1.0f);
    if (is(arch, "phi3")) {
        add(t, NAME("ffn_up.weight"), e, 2 * N_FF, 0);
    } else {
        add(t, NAME("ffn_gate.weight"), e, N_FF, 0);
        add(t, NAME("ffn_up.weight"), e, N_FF, 0);
    }
    add(t, NAME("ffn_down.weight"), N_FF, e, 0);
#undef NAME
}

static void set_u32(tiny_writer *t, const char *suffix, uint32_t v) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", t->o->arch, suffix);
    if (t->ok && !is(suffix, t->o->omit_key)) t->ok = gguf_writer_set_u32(t->w, key, v);
}

static void set_f32(tiny_writer *t, const char *suffix, float v) {
    char key[96];
    snprintf(key, sizeof key, "%s.%s", t->o->arch, suffix);
    if (t->ok && !is(suffix, t->o->omit_key)) t->ok = gguf_writer_set_f32(t->w, key, v);
}

static void write_metadata(tiny_writer *t, int32_t n_head_kv) {
    t->ok = gguf_writer_set_str(t->w, "general.architecture", t->o->arch);
    set_u32(t, "context_length", (uint32_t)(t->o->n_ctx ? t->o->n_ctx : 64));
    set_u32(t, "embedding_length", TINY_LLM_EMBD);
    set_u32(t, "block_count", TINY_LLM_LAYERS);
    set_u32(t, "feed_forward_length", N_FF);
    set_u32(t, "attention.head_count", TINY_LLM_HEADS);
    set_u32(t, "attention.head_count_kv", (uint32_t)n_head_kv);
    set_f32(t, "attention.layer_norm_rms_epsilon", 1e-5f);
    set_f32(t, "rope.freq_base", 10000.0f);
    if (t->o->rope_scaling != NULL) {
        char key[96];
        snprintf(key, sizeof key, "%s.rope.scaling.type", t->o->arch);
        if (t->ok) t->ok = gguf_writer_set_str(t->w, key, t->o->rope_scaling);
        set_f32(t, "rope.scaling.factor", 2.0f);
    }
}

bool tiny_llm_write(const char *path, const tiny_llm_options *options) {
    tiny_llm_options o = *options;
    if (o.arch == NULL) o.arch = "llama";
    int32_t n_head_kv = o.n_head_kv ? o.n_head_kv : 2;
    int64_t head_dim = TINY_LLM_EMBD / TINY_LLM_HEADS;
    tiny_writer t = {.w = gguf_writer_create(), .o = &o, .rng = 42, .ok = true};
    if (t.w == NULL) return false;
    write_metadata(&t, n_head_kv);
    add(&t, "token_embd.weight", TINY_LLM_EMBD, TINY_LLM_VOCAB, 0);
    add(&t, "output_norm.weight", TINY_LLM_EMBD, 1, 1.0f);
    for (int il = 0; il < TINY_LLM_LAYERS; il++)
        add_layer(&t, il, TINY_LLM_HEADS * head_dim, n_head_kv * head_dim);
    char err[256] = "";
    if (t.ok) t.ok = gguf_writer_write(t.w, path, err, sizeof err);
    if (!t.ok) fprintf(stderr, "tiny_llm_write: %s\n", err[0] ? err : "out of memory");
    gguf_writer_free(t.w);
    return t.ok;
}

char *tiny_llm_temp_path(void) {
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    size_t size = strlen(dir) + 32;
    char *path = malloc(size);
    if (path == NULL) return NULL;
    snprintf(path, size, "%s/tiny-llm-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

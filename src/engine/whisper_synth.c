/* Random-weight Whisper models in the ggml format whisper.cpp reads: the header (magic, 11
 * hparams, mel filters, vocabulary) of a real file with the preset's sizes, then every tensor
 * with whisper.cpp's names, shapes and types: vectors, conv biases and positional embeddings
 * F32; conv kernels F16 (F32 in an F32 file); the other matrices of the requested type.
 * Values are seeded normal draws, one stream per tensor name. */
#include "engine/quant.h"
#include "engine/whisper_internal.h"
#include "util/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct preset {
    const char *name;
    int32_t state, heads, layers;
} preset;

static const preset PRESETS[] = {
    {"tiny", 384, 6, 4}, {"base", 512, 8, 6}, {"small", 768, 12, 12}, {"test", 64, 2, 2}};

typedef struct writer {
    FILE *out;
    fl_type type;
    uint64_t seed;
    float *row;
    void *enc;
    bool ok;
} writer;

/* splitmix64 seeded by the model seed and the tensor name; Box-Muller normals. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double rng_normal(rng *r) {
    double u = ((double)(rng_next(r) >> 11) + 1.0) / 9007199254740993.0;
    double v = (double)(rng_next(r) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static void rng_seed(rng *r, uint64_t seed, const char *name) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = name; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ull;
    r->s = seed ^ h;
}

/* One tensor (ne[0] innermost) with values mean + std * N(0, 1). */
static void put_tensor(writer *w, const char *name, int n_dims, const int32_t *ne, fl_type type,
                       float mean, float std) {
    if (!w->ok) return;
    int32_t head[3] = {n_dims, (int32_t)strlen(name), (int32_t)type};
    size_t row_bytes = fl_row_bytes(type, ne[0]);
    w->ok = row_bytes > 0 && fwrite(head, 4, 3, w->out) == 3 &&
            fwrite(ne, 4, (size_t)n_dims, w->out) == (size_t)n_dims &&
            fwrite(name, 1, strlen(name), w->out) == strlen(name);
    int64_t rows = 1;
    for (int d = 1; d < n_dims; d++) rows *= ne[d];
    rng r;
    rng_seed(&r, w->seed, name);
    for (int64_t i = 0; i < rows && w->ok; i++) {
        for (int32_t j = 0; j < ne[0]; j++) w->row[j] = mean + std * (float)rng_normal(&r);
        w->ok = fl_quantize_row(type, w->row, w->enc, ne[0]) == row_bytes &&
                fwrite(w->enc, 1, row_bytes, w->out) == row_bytes;
    }
}

static void put_vector(writer *w, const char *name, int32_t n, float mean, float std) {
    put_tensor(w, name, 1, &n, FL_TYPE_F32, mean, std);
}

/* weight [n_in, n_out] (F16 when rows do not fit the type's blocks) and optional bias */
static void put_linear(writer *w, const char *prefix, const char *name, int32_t n_in, int32_t n_out,
                       bool bias) {
    char full[160];
    int32_t ne[2] = {n_in, n_out};
    fl_type type = fl_row_bytes(w->type, n_in) ? w->type : FL_TYPE_F16;
    snprintf(full, sizeof full, "%s%s.weight", prefix, name);
    put_tensor(w, full, 2, ne, type, 0.0f, 1.0f / sqrtf((float)n_in));
    if (!bias) return;
    snprintf(full, sizeof full, "%s%s.bias", prefix, name);
    put_vector(w, full, n_out, 0.0f, 0.02f);
}

static void put_norm(writer *w, const char *prefix, const char *name, int32_t n) {
    char full[160];
    snprintf(full, sizeof full, "%s%s.weight", prefix, name);
    put_vector(w, full, n, 1.0f, 0.1f);
    snprintf(full, sizeof full, "%s%s.bias", prefix, name);
    put_vector(w, full, n, 0.0f, 0.05f);
}

static void put_attn(writer *w, const char *prefix, const char *kind, int32_t n) {
    char p[128];
    snprintf(p, sizeof p, "%s%s.", prefix, kind);
    put_linear(w, p, "query", n, n, true);
    put_linear(w, p, "key", n, n, false);
    put_linear(w, p, "value", n, n, true);
    put_linear(w, p, "out", n, n, true);
}

static void put_block(writer *w, const char *side, int i, int32_t n, bool cross) {
    char p[96];
    snprintf(p, sizeof p, "%s.blocks.%d.", side, i);
    put_norm(w, p, "attn_ln", n);
    put_attn(w, p, "attn", n);
    if (cross) {
        put_norm(w, p, "cross_attn_ln", n);
        put_attn(w, p, "cross_attn", n);
    }
    put_norm(w, p, "mlp_ln", n);
    put_linear(w, p, "mlp.0", n, 4 * n, true);
    put_linear(w, p, "mlp.2", 4 * n, n, true);
}

static void put_conv(writer *w, const char *name, int32_t n_in, int32_t n_out) {
    char full[96];
    int32_t ne[3] = {3, n_in, n_out}, bias_ne[2] = {1, n_out};
    fl_type type = w->type == FL_TYPE_F32 ? FL_TYPE_F32 : FL_TYPE_F16;
    snprintf(full, sizeof full, "encoder.%s.weight", name);
    put_tensor(w, full, 3, ne, type, 0.0f, 1.0f / sqrtf(3.0f * (float)n_in));
    snprintf(full, sizeof full, "encoder.%s.bias", name);
    put_tensor(w, full, 2, bias_ne, FL_TYPE_F32, 0.0f, 0.02f);
}

static void put_tensors(writer *w, const wh_hparams *hp) {
    int32_t na = hp->n_audio_state, nt = hp->n_text_state;
    int32_t enc_pos[2] = {na, hp->n_audio_ctx}, dec_pos[2] = {nt, hp->n_text_ctx};
    int32_t emb[2] = {nt, hp->n_vocab};
    put_conv(w, "conv1", hp->n_mels, na);
    put_conv(w, "conv2", na, na);
    put_tensor(w, "encoder.positional_embedding", 2, enc_pos, FL_TYPE_F32, 0.0f, 0.1f);
    for (int i = 0; i < hp->n_audio_layer; i++) put_block(w, "encoder", i, na, false);
    put_norm(w, "encoder.", "ln_post", na);
    put_tensor(w, "decoder.positional_embedding", 2, dec_pos, FL_TYPE_F32, 0.0f, 0.1f);
    fl_type emb_type = fl_row_bytes(w->type, nt) ? w->type : FL_TYPE_F16;
    put_tensor(w, "decoder.token_embedding.weight", 2, emb, emb_type, 0.0f, 0.5f);
    for (int i = 0; i < hp->n_text_layer; i++) put_block(w, "decoder", i, nt, true);
    put_norm(w, "decoder.", "ln", nt);
}

/* whisper.cpp's ftype numbers (ggml_ftype); quantized files add 1000 x quantization version 2 */
static int32_t file_ftype(fl_type t) {
    switch (t) {
    case FL_TYPE_F32:
        return 0;
    case FL_TYPE_F16:
        return 1;
    case FL_TYPE_Q4_0:
        return 2002;
    case FL_TYPE_Q4_1:
        return 2003;
    case FL_TYPE_Q8_0:
        return 2007;
    case FL_TYPE_Q5_0:
        return 2008;
    case FL_TYPE_Q5_1:
        return 2009;
    case FL_TYPE_Q2_K:
        return 2010;
    case FL_TYPE_Q3_K:
        return 2011;
    case FL_TYPE_Q4_K:
        return 2012;
    case FL_TYPE_Q5_K:
        return 2013;
    case FL_TYPE_Q6_K:
        return 2014;
    default:
        return -1;
    }
}

fluid_status wh_synth_write(const char *from, const char *out, const char *preset_name,
                            fl_type type, uint64_t seed, fluid_error *err) {
    const preset *pr = NULL;
    for (size_t i = 0; i < sizeof PRESETS / sizeof PRESETS[0]; i++)
        if (strcmp(PRESETS[i].name, preset_name) == 0) pr = &PRESETS[i];
    if (!pr)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "unknown whisper preset '%s'", preset_name);
    if (file_ftype(type) < 0 || !fl_quant_supported(type))
        return fl_set_error(err, FLUID_ERR_UNSUPPORTED, "whisper files cannot hold this type");
    fluid_whisper *src = wh_load_header(from, err);
    if (!src) return err ? err->code : FLUID_ERR_FORMAT;
    wh_hparams hp = {src->hp.n_vocab, 1500,      pr->state,  pr->heads,      pr->layers,      448,
                     pr->state,       pr->heads, pr->layers, src->hp.n_mels, file_ftype(type)};
    size_t widest = 4 * (size_t)pr->state;
    writer w = {fopen(out, "wb"),
                type,
                seed,
                malloc(widest * sizeof(float)),
                malloc(widest * sizeof(float)),
                true};
    uint32_t magic = 0x67676d6c;
    size_t tail = src->header_bytes - 4 - sizeof(hp); /* mel filters + vocabulary, as they are */
    w.ok = w.out && w.row && w.enc && fwrite(&magic, 4, 1, w.out) == 1 &&
           fwrite(&hp, sizeof hp, 1, w.out) == 1 &&
           fwrite(src->map + 4 + sizeof(hp), 1, tail, w.out) == tail;
    put_tensors(&w, &hp);
    if (w.out && fclose(w.out) != 0) w.ok = false;
    free(w.row);
    free(w.enc);
    fluid_whisper_free(src);
    if (!w.ok) {
        remove(out);
        return fl_set_error(err, FLUID_ERR_IO, "cannot write the whisper model %s", out);
    }
    return FLUID_OK;
}

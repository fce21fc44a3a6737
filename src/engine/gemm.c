/* The GEMM driver: activations converted once per call, weight panels decoded by each thread
 * into the layout of gemm_impl.h, micro-kernels run panel x token range. Work units are panels
 * (split further by token ranges when there are too few panels to keep every thread busy),
 * handed out dynamically so that a thread slowed by another process does not hold the others.
 * The scalar micro-kernels here are the reference the SIMD ones must equal exactly: they do
 * the same operations in the same order (fmaf where the SIMD code fuses). */
#include "engine/gemm.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gemm_impl.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"

const fl_gemm_table *fl_gemm_for(fl_simd level) {
    static const fl_gemm_table *const tables[FL_SIMD_COUNT] = {
        &fl_gemm_scalar_table, &fl_gemm_avx2_table, &fl_gemm_avx512_table};
    if ((unsigned)level >= FL_SIMD_COUNT || !fl_simd_available(level)) return NULL;
    return tables[level];
}

static bool format_of(fl_type type, fl_gemm_format *f) {
    switch (type) {
    case FL_TYPE_Q8_0:
        *f = (fl_gemm_format){32, 128, false};
        return true;
    case FL_TYPE_Q4_0:
        *f = (fl_gemm_format){32, 8, false};
        return true;
    case FL_TYPE_Q5_0:
        *f = (fl_gemm_format){32, 16, false};
        return true;
    case FL_TYPE_Q4_1:
    case FL_TYPE_Q5_1:
    case FL_TYPE_Q4_K:
    case FL_TYPE_Q5_K:
        *f = (fl_gemm_format){32, 0, true};
        return true;
    case FL_TYPE_Q6_K:
        *f = (fl_gemm_format){16, 32, false};
        return true;
    default:
        return false;
    }
}

static bool is_float_type(fl_type type) {
    return type == FL_TYPE_F32 || type == FL_TYPE_F16 || type == FL_TYPE_BF16;
}

/* ---- decoding one weight row into codes, scales and mins ------------------------------------ */

static float f16_at(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return fl_f16_to_f32(h);
}

/* Q4_K / Q5_K super-block: sub-block j gets scale d * sc_j and min -dmin * m_j. */
static void k_affine_scales(uint16_t d, uint16_t dmin, const uint8_t *scales, float *scale,
                            float *min) {
    float fd = fl_f16_to_f32(d), fmin = fl_f16_to_f32(dmin);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        fl_k4_scale_min(scales, j, &sc, &m);
        scale[j] = fd * (float)sc;
        min[j] = -fmin * (float)m;
    }
}

void fl_gemm_row_scales(fl_type type, const uint8_t *row, int64_t k, float *scale, float *min) {
    switch (type) {
    case FL_TYPE_Q4_K:
        for (int64_t b = 0; b < k / FL_QK_K; b++) {
            const fl_block_q4_k *w = (const fl_block_q4_k *)row + b;
            k_affine_scales(w->d, w->dmin, w->scales, scale + 8 * b, min + 8 * b);
        }
        break;
    case FL_TYPE_Q5_K:
        for (int64_t b = 0; b < k / FL_QK_K; b++) {
            const fl_block_q5_k *w = (const fl_block_q5_k *)row + b;
            k_affine_scales(w->d, w->dmin, w->scales, scale + 8 * b, min + 8 * b);
        }
        break;
    case FL_TYPE_Q6_K:
        for (int64_t b = 0; b < k / FL_QK_K; b++) {
            const fl_block_q6_k *w = (const fl_block_q6_k *)row + b;
            float d = fl_f16_to_f32(w->d);
            for (int j = 0; j < 16; j++) scale[16 * b + j] = d * (float)w->scales[j];
        }
        break;
    default: { /* legacy blocks: d, then m for the formats with a min */
        size_t bb = fl_type_traits_of(type)->block_bytes;
        bool has_min = type == FL_TYPE_Q4_1 || type == FL_TYPE_Q5_1;
        for (int64_t b = 0; b < k / FL_QK; b++) {
            scale[b] = f16_at(row + b * bb);
            if (has_min) min[b] = f16_at(row + b * bb + 2);
        }
        break;
    }
    }
}

void fl_gemm_put_scales(const fl_gemm_format *f, int panel_rows, uint8_t *panel, int r,
                        const float *scale, const float *min, int64_t k) {
    size_t gb = fl_gemm_group_bytes(f, panel_rows);
    for (int64_t g = 0; g < k / f->group; g++) {
        float *sc = (float *)(panel + (size_t)g * gb + (size_t)f->group * panel_rows);
        sc[r] = scale ? scale[g] : 0.0f;
        if (f->has_min) sc[panel_rows + r] = min ? min[g] : 0.0f;
    }
}

/* 16 bytes of nibbles -> 32 codes (low nibbles first), plus the fifth bits of qh if given. */
static void decode_nibbles(const uint8_t *qs, const uint8_t *qh, uint8_t *codes) {
    uint32_t high = 0;
    if (qh) memcpy(&high, qh, 4);
    for (int i = 0; i < 16; i++) {
        codes[i] = (uint8_t)((qs[i] & 15) | ((high >> i) & 1) << 4);
        codes[i + 16] = (uint8_t)((qs[i] >> 4) | ((high >> (i + 16)) & 1) << 4);
    }
}

static void legacy_codes(fl_type type, const uint8_t *blk, uint8_t *codes) {
    switch (type) {
    case FL_TYPE_Q8_0: /* signed codes shifted to unsigned: the offset of 128 undoes it */
        for (int i = 0; i < FL_QK; i++) codes[i] = (uint8_t)(blk[2 + i] ^ 0x80);
        break;
    case FL_TYPE_Q4_0:
        decode_nibbles(blk + 2, NULL, codes);
        break;
    case FL_TYPE_Q5_0:
        decode_nibbles(blk + 6, blk + 2, codes);
        break;
    case FL_TYPE_Q4_1:
        decode_nibbles(blk + 4, NULL, codes);
        break;
    default: /* Q5_1 */
        decode_nibbles(blk + 8, blk + 4, codes);
        break;
    }
}

static void k_affine_codes(const uint8_t *qs, const uint8_t *qh, uint8_t *codes) {
    for (int j = 0; j < 8; j++) {
        int c = j / 2, shift = 4 * (j % 2);
        for (int l = 0; l < 32; l++) {
            int code = (qs[32 * c + l] >> shift) & 15;
            if (qh) code |= ((qh[l] >> j) & 1) << 4;
            codes[32 * j + l] = (uint8_t)code;
        }
    }
}

static void q6_k_codes(const fl_block_q6_k *w, uint8_t *codes) {
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int low = (w->ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
                int high = (w->qh[32 * h + l] >> (2 * k)) & 3;
                codes[128 * h + 32 * k + l] = (uint8_t)(low | high << 4);
            }
}

/* The unsigned codes of the k elements of one row. */
static void row_codes(fl_type type, const uint8_t *row, int64_t k, uint8_t *codes) {
    for (int64_t b = 0; b < k / FL_QK_K && type == FL_TYPE_Q4_K; b++)
        k_affine_codes(((const fl_block_q4_k *)row)[b].qs, NULL, codes + b * FL_QK_K);
    for (int64_t b = 0; b < k / FL_QK_K && type == FL_TYPE_Q5_K; b++)
        k_affine_codes(((const fl_block_q5_k *)row)[b].qs, ((const fl_block_q5_k *)row)[b].qh,
                       codes + b * FL_QK_K);
    for (int64_t b = 0; b < k / FL_QK_K && type == FL_TYPE_Q6_K; b++)
        q6_k_codes((const fl_block_q6_k *)row + b, codes + b * FL_QK_K);
    if (fl_act_kind_of(type) == FL_ACT_Q8A) {
        size_t bb = fl_type_traits_of(type)->block_bytes;
        for (int64_t b = 0; b < k / FL_QK; b++) legacy_codes(type, row + b * bb, codes + b * FL_QK);
    }
}

/* The scalar panel builder: codes of each row decoded, then placed 4 bytes at a time. */
static void scalar_qpanel(const fl_gemm_pjob *p) {
    const fl_gemm_format *f = p->format;
    int pr = p->panel_rows;
    size_t gb = fl_gemm_group_bytes(f, pr);
    for (int r = 0; r < pr; r++) {
        if (r < p->rows) {
            const uint8_t *row = p->w + (size_t)r * p->w_stride;
            row_codes(p->type, row, p->k, p->codes);
            fl_gemm_row_scales(p->type, row, p->k, p->scale, p->min);
            fl_gemm_put_scales(f, pr, p->panel, r, p->scale, p->min, p->k);
        } else {
            memset(p->codes, 0, (size_t)p->k);
            fl_gemm_put_scales(f, pr, p->panel, r, NULL, NULL, p->k);
        }
        for (int64_t g = 0; g < p->k / f->group; g++)
            for (int s = 0; s < f->group / 4; s++)
                memcpy(p->panel + (size_t)g * gb + (size_t)(s * pr + r) * 4,
                       p->codes + (size_t)g * f->group + 4 * s, 4);
    }
}

/* ---- the job --------------------------------------------------------------------------------- */

typedef struct gemm_job {
    const fl_gemm_table *kt;
    fl_type type;
    fl_gemm_format format; /* quantized weights only */
    bool quantized;
    const uint8_t *w;
    size_t w_stride;
    int64_t rows, k;
    int n_tok;
    const float *x;
    float *y;
    fl_gemm_acts acts;
    int panel_rows;
    size_t panel_bytes;   /* one panel, rounded to 64 */
    size_t scratch_bytes; /* per thread: panel + decoding buffers */
    uint8_t *scratch;
    long n_panels, tok_chunk, tok_units, n_units;
    atomic_long next_unit;
    /* activation conversion */
    fl_quantize_act_fn quantize;
    size_t raw_bytes; /* one token's activation blocks */
    uint8_t *raw;     /* per thread */
} gemm_job;

static size_t round64(size_t n) {
    return (n + 63) & ~(size_t)63;
}

/* Converts rows [r0, r0 + panel_rows) (zeros past the end) into a float panel. */
static void build_fpanel(const gemm_job *j, long r0, float *panel, float *row) {
    int pr = j->panel_rows;
    for (int r = 0; r < pr; r++) {
        if (r0 + r < j->rows)
            fl_dequantize(j->type, j->w + (size_t)(r0 + r) * j->w_stride, row, j->k);
        else
            memset(row, 0, (size_t)j->k * sizeof(float));
        for (int64_t i = 0; i < j->k; i++) panel[i * pr + r] = row[i];
    }
}

static void run_unit(const gemm_job *j, uint8_t *panel, long p, long tc) {
    int t0 = (int)(tc * j->tok_chunk);
    int t1 = t0 + (int)j->tok_chunk < j->n_tok ? t0 + (int)j->tok_chunk : j->n_tok;
    long r0 = p * j->panel_rows;
    int rows = j->rows - r0 < j->panel_rows ? (int)(j->rows - r0) : j->panel_rows;
    if (j->quantized) {
        fl_gemm_qcall c = {&j->format, panel, &j->acts, t0, t1, rows, j->y + r0, (size_t)j->rows};
        j->kt->quantized(&c);
    } else {
        fl_gemm_fcall c = {(const float *)panel, j->x, j->k, t0, t1, rows, j->y + r0,
                           (size_t)j->rows};
        j->kt->floats(&c);
    }
}

static void gemm_worker(void *p, int ith, int nth) {
    (void)nth;
    gemm_job *j = p;
    uint8_t *panel = j->scratch + (size_t)ith * j->scratch_bytes;
    uint8_t *tmp = panel + j->panel_bytes; /* decoding buffers */
    long decoded = -1;
    for (;;) {
        long u = atomic_fetch_add_explicit(&j->next_unit, 1, memory_order_relaxed);
        if (u >= j->n_units) return;
        long pi = u / j->tok_units, tc = u % j->tok_units;
        if (pi != decoded) {
            long r0 = pi * j->panel_rows;
            if (j->quantized) {
                float *scale = (float *)(tmp + round64((size_t)j->k));
                long rows = j->rows - r0 < j->panel_rows ? j->rows - r0 : j->panel_rows;
                fl_gemm_pjob pj = {j->type,
                                   &j->format,
                                   j->w + (size_t)r0 * j->w_stride,
                                   j->w_stride,
                                   (int)rows,
                                   j->k,
                                   panel,
                                   j->panel_rows,
                                   tmp,
                                   scale,
                                   scale + j->k / j->format.group};
                j->kt->qpanel(&pj);
            } else {
                build_fpanel(j, r0, (float *)panel, (float *)tmp);
            }
            decoded = pi;
        }
        run_unit(j, panel, pi, tc);
    }
}

/* ---- activations ------------------------------------------------------------------------------
 */

/* Token t's codes, scales, sums and start values from its activation blocks. */
static void extract_acts(const gemm_job *j, const uint8_t *raw, int t) {
    const fl_gemm_format *f = &j->format;
    const fl_gemm_acts *a = &j->acts;
    int8_t *codes = (int8_t *)a->codes + (size_t)t * (size_t)j->k;
    size_t base = (size_t)t * (size_t)a->n_groups;
    int32_t *init = (int32_t *)a->init + base;
    float *scale = (float *)a->scale + base, *ssum = (float *)a->scaled_sum + base;
    for (int g = 0; g < a->n_groups; g++) {
        float d;
        int sum;
        if (fl_act_kind_of(j->type) == FL_ACT_Q8A) {
            const fl_block_q8a *b = (const fl_block_q8a *)raw + g;
            memcpy(codes + (size_t)g * FL_QK, b->qs, FL_QK);
            d = b->d;
            sum = b->sum;
        } else { /* groups of 32 or 16 inside the 256-element blocks */
            int per = FL_QK_K / f->group, in = g % per;
            const fl_block_q8_k *b = (const fl_block_q8_k *)raw + g / per;
            memcpy(codes + (size_t)g * f->group, b->qs + in * f->group, (size_t)f->group);
            d = b->d;
            sum = f->group == 16 ? b->bsums[in] : b->bsums[2 * in] + b->bsums[2 * in + 1];
        }
        scale[g] = d;
        init[g] = -f->offset * sum;
        ssum[g] = d * (float)sum;
    }
}

static void convert_acts(void *p, int ith, int nth) {
    const gemm_job *j = p;
    uint8_t *raw = j->raw + (size_t)ith * j->raw_bytes;
    long begin, end;
    fl_split_range(j->n_tok, ith, nth, &begin, &end);
    for (long t = begin; t < end; t++) {
        j->quantize(j->x + (size_t)t * (size_t)j->k, raw, j->k);
        extract_acts(j, raw, (int)t);
    }
}

/* ---- planning and the entry point -------------------------------------------------------------
 */

enum { UNITS_PER_THREAD = 4 };

static void plan_units(gemm_job *j, int nth) {
    j->n_panels = (long)((j->rows + j->panel_rows - 1) / j->panel_rows);
    long want = (long)nth * UNITS_PER_THREAD;
    j->tok_units = j->n_panels >= want ? 1 : (want + j->n_panels - 1) / j->n_panels;
    if (j->tok_units > j->n_tok) j->tok_units = j->n_tok;
    j->tok_chunk = (j->n_tok + j->tok_units - 1) / j->tok_units;
    j->tok_units = (j->n_tok + j->tok_chunk - 1) / j->tok_chunk;
    j->n_units = j->n_panels * j->tok_units;
    atomic_store(&j->next_unit, 0);
}

/* Allocates what the job needs (returns false if it cannot). */
static bool allocate(gemm_job *j, int nth, void **blocks, int n_blocks) {
    size_t tmp;
    if (j->quantized) {
        j->panel_bytes = round64((size_t)(j->k / j->format.group) *
                                 fl_gemm_group_bytes(&j->format, j->panel_rows));
        tmp = round64((size_t)j->k) + 2 * sizeof(float) * (size_t)(j->k / j->format.group);
    } else {
        j->panel_bytes = round64((size_t)j->k * (size_t)j->panel_rows * sizeof(float));
        tmp = (size_t)j->k * sizeof(float);
    }
    j->scratch_bytes = j->panel_bytes + round64(tmp);
    for (int i = 0; i < n_blocks; i++) blocks[i] = NULL;
    blocks[0] = j->scratch = aligned_alloc(64, j->scratch_bytes * (size_t)nth);
    if (!j->quantized) return j->scratch != NULL;
    size_t n_tok = (size_t)j->n_tok, ng = (size_t)j->acts.n_groups;
    j->raw_bytes = fl_act_row_bytes(j->type, j->k);
    blocks[1] = j->raw = malloc(j->raw_bytes * (size_t)nth);
    blocks[2] = (void *)(j->acts.codes = malloc(n_tok * (size_t)j->k));
    blocks[3] = (void *)(j->acts.init = malloc(n_tok * ng * sizeof(int32_t)));
    blocks[4] = (void *)(j->acts.scale = malloc(n_tok * ng * sizeof(float)));
    blocks[5] = (void *)(j->acts.scaled_sum = malloc(n_tok * ng * sizeof(float)));
    for (int i = 0; i < n_blocks; i++)
        if (!blocks[i]) return false;
    return true;
}

static bool gemm_with(const fl_gemm_table *kt, const fl_tensor *w, const float *x, int n_tok,
                      float *y, fl_pool *pool) {
    gemm_job j = {
        .kt = kt,
        .type = w->type,
        .w = w->data,
        .w_stride = fl_row_bytes(w->type, w->ne[0]),
        .rows = w->ne[1],
        .k = w->ne[0],
        .n_tok = n_tok,
        .x = x,
        .y = y,
    };
    j.quantized = format_of(w->type, &j.format);
    if ((!j.quantized && !is_float_type(w->type)) || j.w_stride == 0 || n_tok <= 0 || j.rows <= 0)
        return false;
    j.panel_rows = j.quantized ? kt->q_panel_rows : kt->f_panel_rows;
    int nth = fl_pool_size(pool);
    enum { N_BLOCKS = 6 };
    void *blocks[N_BLOCKS];
    if (j.quantized) {
        j.acts.k = j.k;
        j.acts.n_groups = (int)(j.k / j.format.group);
        const fl_kernel_table *ks = fl_kernels_for(fl_simd_active());
        j.quantize = fl_act_kind_of(w->type) == FL_ACT_Q8K ? ks->quantize_q8k : ks->quantize_q8a;
    }
    bool ok = allocate(&j, nth, blocks, j.quantized ? N_BLOCKS : 1);
    if (ok) {
        if (j.quantized) fl_pool_run(pool, convert_acts, &j);
        plan_units(&j, nth);
        fl_pool_run(pool, gemm_worker, &j);
    }
    for (int i = 0; i < (j.quantized ? N_BLOCKS : 1); i++) free(blocks[i]);
    return ok;
}

bool fl_gemm(const fl_tensor *w, const float *x, int n_tok, float *y, fl_pool *pool) {
    return gemm_with(fl_gemm_for(fl_simd_active()), w, x, n_tok, y, pool);
}

bool fl_gemm_at(fl_simd level, const fl_tensor *w, const float *x, int n_tok, float *y,
                fl_pool *pool) {
    const fl_gemm_table *kt = fl_gemm_for(level);
    return kt && gemm_with(kt, w, x, n_tok, y, pool);
}

/* ---- scalar micro-kernels ---------------------------------------------------------------------
 */

enum { SCALAR_PANEL_ROWS = 4 };

static void scalar_quantized(const fl_gemm_qcall *c) {
    const fl_gemm_format *f = c->format;
    const fl_gemm_acts *a = c->acts;
    const int pr = SCALAR_PANEL_ROWS;
    size_t gb = fl_gemm_group_bytes(f, pr);
    for (int t = c->t0; t < c->t1; t++) {
        const int8_t *codes = a->codes + (size_t)t * (size_t)a->k;
        size_t base = (size_t)t * (size_t)a->n_groups;
        for (int r = 0; r < c->rows; r++) {
            float acc = 0.0f;
            for (int g = 0; g < a->n_groups; g++) {
                const uint8_t *pg = c->panel + (size_t)g * gb;
                const int8_t *ag = codes + (size_t)g * f->group;
                int32_t isum = a->init[base + g];
                for (int s = 0; s < f->group / 4; s++)
                    for (int e = 0; e < 4; e++) isum += pg[(s * pr + r) * 4 + e] * ag[4 * s + e];
                const float *sc = (const float *)(pg + (size_t)f->group * pr);
                acc = fmaf((float)isum * a->scale[base + g], sc[r], acc);
                if (f->has_min) acc = fmaf(sc[pr + r], a->scaled_sum[base + g], acc);
            }
            c->y[(size_t)t * c->y_stride + r] = acc;
        }
    }
}

static void scalar_floats(const fl_gemm_fcall *c) {
    const int pr = SCALAR_PANEL_ROWS;
    for (int t = c->t0; t < c->t1; t++) {
        const float *x = c->x + (size_t)t * (size_t)c->k;
        for (int r = 0; r < c->rows; r++) {
            float acc = 0.0f;
            for (int64_t i = 0; i < c->k; i++) acc = fmaf(c->panel[i * pr + r], x[i], acc);
            c->y[(size_t)t * c->y_stride + r] = acc;
        }
    }
}

const fl_gemm_table fl_gemm_scalar_table = {
    .q_panel_rows = SCALAR_PANEL_ROWS,
    .f_panel_rows = SCALAR_PANEL_ROWS,
    .qpanel = scalar_qpanel,
    .quantized = scalar_quantized,
    .floats = scalar_floats,
};

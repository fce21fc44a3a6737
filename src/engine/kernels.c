/* fl_matmul: activations converted once per call (8-bit blocks for quantized weights), then
 * weight rows dotted with them on every pool thread. One token (generation) streams each
 * weight row once through the instruction set's generation kernels, many rows per call,
 * in contiguous row chunks handed out dynamically (fl_matmul_multi does this for several
 * matrices in one pool run); several tokens (prompts) are cut into tiles of rows x tokens so a
 * weight chunk stays in cache while it meets every token of the tile, and each row is decoded
 * once for up to FL_DOT_MAX_TOK tokens. */
#include "engine/kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gemm.h"
#include "engine/kernels_impl.h"

static fl_kernel_table g_tables[FL_SIMD_COUNT]; /* merged tables, built once */
static pthread_once_t g_tables_once = PTHREAD_ONCE_INIT;

static void overlay(fl_kernel_table *dst, const fl_kernel_table *src) {
    for (int t = 0; t < FL_TYPE_COUNT; t++) {
        if (src->dot[t]) dst->dot[t] = src->dot[t];
        if (src->gemv[t].rows) dst->gemv[t] = src->gemv[t];
    }
    if (src->quantize_q8a) dst->quantize_q8a = src->quantize_q8a;
    if (src->quantize_q8k) dst->quantize_q8k = src->quantize_q8k;
}

static void build_tables(void) {
    g_tables[FL_SIMD_SCALAR] = fl_kernels_scalar_table;
    g_tables[FL_SIMD_AVX2] = g_tables[FL_SIMD_SCALAR];
    overlay(&g_tables[FL_SIMD_AVX2], &fl_kernels_avx2_table);
    g_tables[FL_SIMD_AVX512] = g_tables[FL_SIMD_AVX2];
    overlay(&g_tables[FL_SIMD_AVX512], &fl_kernels_avx512_table);
}

const fl_kernel_table *fl_kernels_for(fl_simd level) {
    if ((unsigned)level >= FL_SIMD_COUNT || !fl_simd_available(level)) return NULL;
    pthread_once(&g_tables_once, build_tables);
    return &g_tables[level];
}

fl_act_kind fl_act_kind_of(fl_type weight_type) {
    switch (weight_type) {
    case FL_TYPE_Q4_K:
    case FL_TYPE_Q5_K:
    case FL_TYPE_Q6_K:
        return FL_ACT_Q8K;
    case FL_TYPE_F32:
    case FL_TYPE_F16:
    case FL_TYPE_BF16:
        return FL_ACT_F32;
    default:
        return FL_ACT_Q8A;
    }
}

size_t fl_act_row_bytes(fl_type weight_type, int64_t n) {
    switch (fl_act_kind_of(weight_type)) {
    case FL_ACT_Q8K:
        return (size_t)(n / FL_QK_K) * sizeof(fl_block_q8_k);
    case FL_ACT_Q8A:
        return (size_t)(n / FL_QK) * sizeof(fl_block_q8a);
    default:
        return (size_t)n * sizeof(float);
    }
}

bool fl_kernels_support(fl_type type) {
    return (unsigned)type < FL_TYPE_COUNT && fl_kernels_scalar_table.dot[type] != NULL;
}

void fl_dequantize_row(const fl_tensor *w, int64_t row, float *dst) {
    int64_t cols = w->ne[0];
    const char *base = (const char *)w->data + (size_t)row * fl_row_bytes(w->type, cols);
    if (!fl_kernels_support(w->type) || !fl_dequantize(w->type, base, dst, cols))
        memset(dst, 0, (size_t)cols * sizeof(float));
}

/* ---- the parallel product ------------------------------------------------------------------ */

typedef struct matmul_task {
    fl_dot_fn dot;
    fl_quantize_act_fn quantize; /* NULL for float weights */
    const char *w;               /* weight rows */
    size_t w_stride;             /* bytes per weight row */
    int64_t rows, cols;
    const float *x;  /* float activations: n_tok rows of cols */
    const char *act; /* what the dot products read: converted activations, or x */
    size_t act_stride;
    int n_tok;
    float *y;
    long row_chunk; /* rows per work unit */
    int tok_chunk;  /* tokens per work unit */
    long row_units, n_units;
    atomic_long next_unit;
} matmul_task;

static void quantize_activations(void *p, int ith, int nth) {
    matmul_task *t = p;
    long begin, end;
    fl_split_range(t->n_tok, ith, nth, &begin, &end);
    for (long i = begin; i < end; i++)
        t->quantize(t->x + (size_t)i * (size_t)t->cols, (char *)t->act + (size_t)i * t->act_stride,
                    t->cols);
}

/* One tile: rows [r0, r1) against tokens [t0, t1), up to FL_DOT_MAX_TOK tokens per call. */
static void run_tile(const matmul_task *t, long r0, long r1, int t0, int t1) {
    float out[FL_DOT_MAX_TOK];
    for (long r = r0; r < r1; r++) {
        const char *wr = t->w + (size_t)r * t->w_stride;
        for (int tok = t0; tok < t1; tok += FL_DOT_MAX_TOK) {
            int nt = t1 - tok < FL_DOT_MAX_TOK ? t1 - tok : FL_DOT_MAX_TOK;
            t->dot(t->cols, wr, t->act + (size_t)tok * t->act_stride, t->act_stride, nt, out);
            for (int i = 0; i < nt; i++) t->y[(size_t)(tok + i) * (size_t)t->rows + r] = out[i];
        }
    }
}

/* Threads take work units (a row chunk of a token chunk) until none are left, so a thread
 * slowed by another process does not hold the others up. */
static void matmul_worker(void *p, int ith, int nth) {
    (void)ith;
    (void)nth;
    matmul_task *t = p;
    for (;;) {
        long u = atomic_fetch_add_explicit(&t->next_unit, 1, memory_order_relaxed);
        if (u >= t->n_units) return;
        long rc = u % t->row_units, tc = u / t->row_units;
        long r0 = rc * t->row_chunk, r1 = r0 + t->row_chunk < t->rows ? r0 + t->row_chunk : t->rows;
        int t0 = (int)(tc * t->tok_chunk);
        int t1 = t0 + t->tok_chunk < t->n_tok ? t0 + t->tok_chunk : t->n_tok;
        run_tile(t, r0, r1, t0, t1);
    }
}

enum {
    UNITS_PER_THREAD = 8, /* for balance when threads run at different speeds */
    MIN_ROW_CHUNK = 16,
    TOK_CHUNK = 64,          /* tokens per tile: their activations stay in L2 */
    ACT_STACK_BYTES = 32768, /* activations of one token of most models fit here */
};

static void plan_units(matmul_task *t, int nth) {
    t->tok_chunk = t->n_tok < TOK_CHUNK ? t->n_tok : TOK_CHUNK;
    long tok_units = (t->n_tok + t->tok_chunk - 1) / t->tok_chunk;
    long want = (long)nth * UNITS_PER_THREAD / tok_units; /* row chunks wanted */
    if (want < 1) want = 1;
    long chunk = (long)((t->rows + want - 1) / want);
    if (chunk < MIN_ROW_CHUNK) chunk = MIN_ROW_CHUNK;
    t->row_chunk = chunk;
    t->row_units = (long)((t->rows + chunk - 1) / chunk);
    t->n_units = t->row_units * tok_units;
    atomic_store(&t->next_unit, 0);
}

/* Converts the activations of tokens [0, n) into buf and runs the product for them. */
static void run_tokens(matmul_task *t, const float *x, int n, float *y, char *buf, fl_pool *pool) {
    t->x = x;
    t->y = y;
    t->n_tok = n;
    if (t->quantize) {
        t->act = buf;
        if (n == 1)
            t->quantize(x, buf, t->cols);
        else
            fl_pool_run(pool, quantize_activations, t);
    } else {
        t->act = (const char *)x;
    }
    plan_units(t, fl_pool_size(pool));
    fl_pool_run(pool, matmul_worker, t);
}

/* ---- generation: one token, one or several matrices ------------------------------------------ */

typedef struct gemv_part {
    fl_gemv_rows_fn rows; /* NULL: dot with one token, row by row */
    fl_dot_fn dot;
    const char *w;
    size_t w_stride;
    int64_t n_rows;
    const void *act;
    float *y;
    long row_chunk;
    long first_unit; /* the part's work units are [first_unit, next part's first_unit) */
} gemv_part;

/* The work units of one thread: [next, end), taken from the front by whoever takes them. */
typedef struct gemv_range {
    _Alignas(64) atomic_long next; /* a cache line each: threads take from their own at once */
    long end;
} gemv_range;

enum { GEMV_MAX_RANGES = 16 }; /* more threads share ranges */

typedef struct gemv_task {
    gemv_part part[FL_MATMUL_MAX_PARTS];
    int n_parts;
    int64_t cols;
    long n_units;
    int n_ranges;
    gemv_range range[GEMV_MAX_RANGES];
} gemv_task;

static void gemv_run_rows(const gemv_part *p, int64_t cols, long r0, long r1) {
    const char *w = p->w + (size_t)r0 * p->w_stride;
    if (p->rows) {
        p->rows(cols, w, p->w_stride, r1 - r0, p->act, p->y + r0);
        return;
    }
    for (long r = r0; r < r1; r++, w += p->w_stride) p->dot(cols, w, p->act, 0, 1, p->y + r);
}

static void gemv_run_unit(const gemv_task *t, long u) {
    int i = t->n_parts - 1;
    while (t->part[i].first_unit > u) i--;
    const gemv_part *p = &t->part[i];
    long r0 = (u - p->first_unit) * p->row_chunk;
    long r1 = r0 + p->row_chunk < p->n_rows ? r0 + p->row_chunk : (long)p->n_rows;
    gemv_run_rows(p, t->cols, r0, r1);
}

/* Each thread streams through its own contiguous range of units, then helps finish the
 * others' (a thread slowed by another process does not hold the rest up). */
static void gemv_worker(void *ctx, int ith, int nth) {
    (void)nth;
    gemv_task *t = ctx;
    for (int k = 0; k < t->n_ranges; k++) {
        gemv_range *r = &t->range[(ith + k) % t->n_ranges];
        for (;;) {
            long u = atomic_fetch_add_explicit(&r->next, 1, memory_order_relaxed);
            if (u >= r->end) break;
            gemv_run_unit(t, u);
        }
    }
}

enum {
    GEMV_UNITS_PER_THREAD = 32,     /* small units: the last ones balance the threads */
    GEMV_ROW_ALIGN = 16,            /* chunks hold whole batches of the kernels' rows */
    GEMV_SCRATCH_STACK = 48 * 1024, /* converted activations of most models fit here */
};

/* Cuts every part into contiguous row chunks of about the same byte count,
 * GEMV_UNITS_PER_THREAD chunks per thread in all, and gives each thread a contiguous range of
 * them. */
static void gemv_plan(gemv_task *t, int nth) {
    size_t total = 0;
    for (int i = 0; i < t->n_parts; i++) total += t->part[i].w_stride * (size_t)t->part[i].n_rows;
    size_t chunk_bytes = total / ((size_t)nth * GEMV_UNITS_PER_THREAD) + 1;
    long units = 0;
    for (int i = 0; i < t->n_parts; i++) {
        gemv_part *p = &t->part[i];
        long rows = (long)(chunk_bytes / p->w_stride) + 1;
        rows = (rows + GEMV_ROW_ALIGN - 1) / GEMV_ROW_ALIGN * GEMV_ROW_ALIGN;
        p->row_chunk = rows;
        p->first_unit = units;
        units += (long)((p->n_rows + rows - 1) / rows);
    }
    t->n_units = units;
    t->n_ranges = nth < GEMV_MAX_RANGES ? nth : GEMV_MAX_RANGES;
    for (int i = 0; i < t->n_ranges; i++) {
        long begin, end;
        fl_split_range(units, i, t->n_ranges, &begin, &end);
        atomic_store(&t->range[i].next, begin);
        t->range[i].end = end;
    }
}

/* Bytes of scratch the activations of part i need (converted, then maybe arranged). */
static size_t gemv_scratch_bytes(const fl_kernel_table *k, fl_type type, int64_t cols) {
    if (fl_act_kind_of(type) == FL_ACT_F32) return 0;
    size_t bytes = fl_act_row_bytes(type, cols);
    if (k->gemv[type].rows && k->gemv[type].arrange) bytes += k->gemv[type].act_bytes(cols);
    return (bytes + 63) / 64 * 64;
}

/* The activations part `type` reads: x itself, or its conversion into scratch (an earlier
 * part's conversion when it needs the same). Returns the scratch bytes used. */
static size_t gemv_prepare(const fl_kernel_table *k, gemv_task *t, const fl_type *types, int i,
                           const float *x, char *scratch) {
    fl_type type = types[i];
    fl_act_kind kind = fl_act_kind_of(type);
    if (kind == FL_ACT_F32) {
        t->part[i].act = x;
        return 0;
    }
    fl_gemv_arrange_fn arrange = k->gemv[type].rows ? k->gemv[type].arrange : NULL;
    for (int j = 0; j < i; j++) {
        fl_gemv_arrange_fn other = k->gemv[types[j]].rows ? k->gemv[types[j]].arrange : NULL;
        if (fl_act_kind_of(types[j]) == kind && other == arrange) {
            t->part[i].act = t->part[j].act;
            return 0;
        }
    }
    (kind == FL_ACT_Q8K ? k->quantize_q8k : k->quantize_q8a)(x, scratch, t->cols);
    t->part[i].act = scratch;
    if (arrange) {
        char *dst = scratch + fl_act_row_bytes(type, t->cols);
        arrange(scratch, dst, t->cols);
        t->part[i].act = dst;
    }
    return gemv_scratch_bytes(k, type, t->cols);
}

/* One token against n_w supported matrices of width cols; false when scratch memory for the
 * activations cannot be had. */
static bool gemv_run(const fl_tensor *const *ws, int n_w, const float *x, float *const *ys,
                     fl_pool *pool) {
    const fl_kernel_table *k = fl_kernels_for(fl_simd_active());
    gemv_task t = {.n_parts = n_w, .cols = ws[0]->ne[0]};
    fl_type types[FL_MATMUL_MAX_PARTS];
    size_t need = 0;
    for (int i = 0; i < n_w; i++) {
        types[i] = ws[i]->type;
        need += gemv_scratch_bytes(k, types[i], t.cols);
    }
    _Alignas(64) char stack_buf[GEMV_SCRATCH_STACK];
    char *scratch = need <= sizeof stack_buf ? stack_buf : malloc(need);
    if (scratch == NULL) return false;
    size_t used = 0;
    for (int i = 0; i < n_w; i++) {
        gemv_part *p = &t.part[i];
        p->rows = k->gemv[types[i]].rows;
        p->dot = k->dot[types[i]];
        p->w = ws[i]->data;
        p->w_stride = fl_row_bytes(types[i], t.cols);
        p->n_rows = ws[i]->ne[1];
        p->y = ys[i];
        used += gemv_prepare(k, &t, types, i, x, scratch + used);
    }
    gemv_plan(&t, fl_pool_size(pool));
    fl_pool_run(pool, gemv_worker, &t);
    if (scratch != stack_buf) free(scratch);
    return true;
}

/* Last resort when no activation buffer can be had: dequantize each weight row piecewise and
 * use float dot products. Slow but needs only the stack. */
static void matmul_dequantized(const fl_tensor *w, const float *x, int n_tok, float *y) {
    enum { PIECE = 2048 };
    int64_t rows = w->ne[1], cols = w->ne[0];
    float piece[PIECE];
    int64_t block = fl_type_traits_of(w->type)->block_size;
    int64_t step = PIECE / block * block;
    for (int64_t r = 0; r < rows; r++) {
        for (int tok = 0; tok < n_tok; tok++) y[(size_t)tok * rows + r] = 0.0f;
        const char *wr = (const char *)w->data + (size_t)r * fl_row_bytes(w->type, cols);
        for (int64_t c0 = 0; c0 < cols; c0 += step) {
            int64_t n = cols - c0 < step ? cols - c0 : step;
            fl_dequantize(w->type, wr + fl_row_bytes(w->type, c0), piece, n);
            for (int tok = 0; tok < n_tok; tok++) {
                const float *xr = x + (size_t)tok * cols + c0;
                float sum = 0.0f;
                for (int64_t i = 0; i < n; i++) sum += piece[i] * xr[i];
                y[(size_t)tok * rows + r] += sum;
            }
        }
    }
}

void fl_matmul(const fl_tensor *w, const float *x, int n_tok, float *y, fl_pool *pool) {
    int64_t rows = w->ne[1], cols = w->ne[0];
    if (n_tok <= 0 || rows <= 0) return;
    if (!fl_kernels_support(w->type) || fl_row_bytes(w->type, cols) == 0) {
        memset(y, 0, sizeof(float) * (size_t)n_tok * (size_t)rows);
        return;
    }
    if (n_tok == 1 && gemv_run(&w, 1, x, &y, pool)) return;
    if (n_tok >= FL_GEMM_MIN_TOK && fl_gemm(w, x, n_tok, y, pool)) return; /* prompts: gemm.c */
    const fl_kernel_table *k = fl_kernels_for(fl_simd_active());
    matmul_task task = {
        .dot = k->dot[w->type],
        .w = w->data,
        .w_stride = fl_row_bytes(w->type, cols),
        .rows = rows,
        .cols = cols,
    };
    fl_act_kind kind = fl_act_kind_of(w->type);
    if (kind != FL_ACT_F32) task.quantize = kind == FL_ACT_Q8K ? k->quantize_q8k : k->quantize_q8a;
    task.act_stride =
        kind == FL_ACT_F32 ? (size_t)cols * sizeof(float) : fl_act_row_bytes(w->type, cols);
    _Alignas(64) char stack_buf[ACT_STACK_BYTES];
    size_t need = kind == FL_ACT_F32 ? 0 : task.act_stride * (size_t)n_tok;
    if (need <= sizeof stack_buf) {
        run_tokens(&task, x, n_tok, y, stack_buf, pool);
        return;
    }
    char *heap = malloc(need);
    if (heap) {
        run_tokens(&task, x, n_tok, y, heap, pool);
        free(heap);
        return;
    }
    /* out of memory: as many tokens at a time as the stack buffer holds */
    int per = (int)(sizeof stack_buf / task.act_stride);
    if (per == 0) {
        matmul_dequantized(w, x, n_tok, y);
        return;
    }
    for (int t0 = 0; t0 < n_tok; t0 += per) {
        int n = n_tok - t0 < per ? n_tok - t0 : per;
        run_tokens(&task, x + (size_t)t0 * (size_t)cols, n, y + (size_t)t0 * (size_t)rows,
                   stack_buf, pool);
    }
}

void fl_matmul_multi(const fl_tensor *const *ws, int n_w, const float *x, int n_tok,
                     float *const *ys, fl_pool *pool) {
    bool together = n_tok == 1 && n_w <= FL_MATMUL_MAX_PARTS;
    for (int i = 0; i < n_w && together; i++)
        together = ws[i]->ne[0] == ws[0]->ne[0] && ws[i]->ne[1] > 0 &&
                   fl_kernels_support(ws[i]->type) && fl_row_bytes(ws[i]->type, ws[i]->ne[0]) > 0;
    if (together && n_w > 0 && gemv_run(ws, n_w, x, ys, pool)) return;
    for (int i = 0; i < n_w; i++) fl_matmul(ws[i], x, n_tok, ys[i], pool);
}

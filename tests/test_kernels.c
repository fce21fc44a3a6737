/* Kernels: every SIMD level the CPU supports against the scalar reference (exact integer
 * block sums, 1e-5 relative for float results), and fl_matmul's threading/tiling against the
 * per-element dot products. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gemm.h"
#include "engine/kernels.h"
#include "engine/kernels_impl.h"
#include "support/rng.h"

static const fl_type WEIGHT_TYPES[] = {
    FL_TYPE_F32,  FL_TYPE_F16,  FL_TYPE_BF16, FL_TYPE_Q8_0, FL_TYPE_Q4_0, FL_TYPE_Q4_1,
    FL_TYPE_Q5_0, FL_TYPE_Q5_1, FL_TYPE_Q4_K, FL_TYPE_Q5_K, FL_TYPE_Q6_K,
};
enum { N_WEIGHT_TYPES = sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0] };

static bool is_quantized(fl_type t) {
    return fl_act_kind_of(t) != FL_ACT_F32;
}

/* A power of two in [1/2, 1] as f16 bits. */
static uint16_t pow2_f16(uint64_t *s) {
    return fl_f32_to_f16(ldexpf(1.0f, -(int)(test_rng_next(s) % 2)));
}

/* Replaces every float scale of a quantized row by a power of two, so that the float side of
 * any dot product is exact whatever the order of the additions. */
static void make_scales_exact(fl_type t, void *row, int64_t n, uint64_t *s) {
    int64_t nb = n / fl_type_traits_of(t)->block_size;
    size_t bytes = fl_type_traits_of(t)->block_bytes;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = (uint8_t *)row + b * bytes;
        uint16_t h[2] = {pow2_f16(s), pow2_f16(s)};
        switch (t) {
        case FL_TYPE_Q6_K:
            memcpy(blk + offsetof(fl_block_q6_k, d), h, 2);
            break;
        case FL_TYPE_Q4_1:
        case FL_TYPE_Q5_1:
        case FL_TYPE_Q4_K:
        case FL_TYPE_Q5_K:
            memcpy(blk, h, 4); /* d and m / dmin */
            break;
        default:
            memcpy(blk, h, 2);
            break;
        }
    }
}

/* Activation blocks with integers in [-7, 7] and scales 1 or 1/2: with such operands every
 * partial sum stays far below 2^24 units, so float additions are exact in any order. */
static void make_exact_activations(fl_act_kind kind, void *dst, int64_t n, uint64_t *s) {
    if (kind == FL_ACT_Q8A) {
        fl_block_q8a *a = dst;
        for (int64_t b = 0; b < n / FL_QK; b++) {
            a[b].d = ldexpf(1.0f, -(int)(test_rng_next(s) % 2));
            a[b].sum = 0;
            for (int i = 0; i < FL_QK; i++) {
                a[b].qs[i] = (int8_t)((int)(test_rng_next(s) % 15) - 7);
                a[b].sum += a[b].qs[i];
            }
        }
    } else {
        fl_block_q8_k *a = dst;
        for (int64_t b = 0; b < n / FL_QK_K; b++) {
            a[b].d = ldexpf(1.0f, -(int)(test_rng_next(s) % 2));
            for (int j = 0; j < 16; j++) {
                int sum = 0;
                for (int i = 16 * j; i < 16 * j + 16; i++) {
                    a[b].qs[i] = (int8_t)((int)(test_rng_next(s) % 15) - 7);
                    sum += a[b].qs[i];
                }
                a[b].bsums[j] = (int16_t)sum;
            }
        }
    }
}

enum { COLS = 1024, TOKS = FL_DOT_MAX_TOK, GEMV_ROWS = 11 };

/* Buffers and random state of one comparison test, shared by all its cases. */
typedef struct rows_buf {
    float x[TOKS][COLS];
    float wf[COLS];
    unsigned char w[COLS * 4];
    unsigned char act[TOKS][COLS * 2];
    unsigned char act_ref[TOKS][COLS * 2];
    unsigned char w_rows[GEMV_ROWS * COLS * 2]; /* GEMV_ROWS rows of up to COLS weights */
    unsigned char arranged[COLS * 16];          /* activations as a generation kernel wants them */
    uint64_t seed;
} rows_buf;

/* Compares the table k of SIMD level `level` with the scalar table ref on weight type t;
 * returns how many cases it checked (0 when the type is not its concern). */
typedef int (*simd_case)(const fl_kernel_table *k, const fl_kernel_table *ref, fl_simd level,
                         fl_type t, rows_buf *b);

/* Runs one comparison on every SIMD level this CPU has and every weight type, with buffers
 * whose random state starts at `seed`; skips the test when nothing was checked (no SIMD
 * level, or none with the kernels compared, on this CPU). */
static void compare_simd_levels(simd_case check, uint64_t seed) {
    const fl_kernel_table *ref = fl_kernels_for(FL_SIMD_SCALAR);
    rows_buf *b = malloc(sizeof *b);
    assert_non_null(b);
    b->seed = seed;
    int checked = 0;
    for (int level = FL_SIMD_AVX2; level < FL_SIMD_COUNT; level++) {
        const fl_kernel_table *k = fl_kernels_for((fl_simd)level);
        if (k == NULL) continue;
        for (int ti = 0; ti < N_WEIGHT_TYPES; ti++)
            checked += check(k, ref, (fl_simd)level, WEIGHT_TYPES[ti], b);
    }
    free(b);
    if (checked == 0) skip();
}

static int dots_equal_scalar_exactly(const fl_kernel_table *k, const fl_kernel_table *ref,
                                     fl_simd level, fl_type t, rows_buf *b) {
    if (!is_quantized(t)) return 0;
    uint64_t *s = &b->seed;
    int checked = 0;
    for (int rep = 0; rep < 20; rep++) {
        for (int i = 0; i < COLS; i++) b->wf[i] = test_rng_uniform(s);
        fl_quantize_row(t, b->wf, b->w, COLS);
        make_scales_exact(t, b->w, COLS, s);
        for (int tok = 0; tok < TOKS; tok++)
            make_exact_activations(fl_act_kind_of(t), b->act[tok], COLS, s);
        for (int nt = 1; nt <= TOKS; nt++) {
            float want[TOKS], got[TOKS];
            ref->dot[t](COLS, b->w, b->act, sizeof b->act[0], nt, want);
            k->dot[t](COLS, b->w, b->act, sizeof b->act[0], nt, got);
            for (int i = 0; i < nt; i++)
                if (want[i] != got[i])
                    fail_msg("%s %s nt=%d: %.9g != %.9g", fl_simd_name(level),
                             fl_type_traits_of(t)->name, nt, got[i], want[i]);
            checked++;
        }
    }
    return checked;
}

static void simd_dots_equal_scalar_exactly(void **state) {
    (void)state;
    compare_simd_levels(dots_equal_scalar_exactly, 12345);
}

/* Sum of |w_i * x_i| over the dequantized operands: the scale of float rounding errors. */
static double magnitude(fl_type t, const void *w, const float *x, int64_t n) {
    float wd[COLS];
    fl_dequantize(t, w, wd, n);
    double m = 0;
    for (int64_t i = 0; i < n; i++) m += fabs((double)wd[i] * x[i]);
    return m;
}

static int matches_scalar_on_real_data(const fl_kernel_table *k, const fl_kernel_table *ref,
                                       fl_simd level, fl_type t, rows_buf *b) {
    uint64_t *s = &b->seed;
    fl_act_kind kind = fl_act_kind_of(t);
    int checked = 0;
    for (int rep = 0; rep < 10; rep++) {
        for (int i = 0; i < COLS; i++) b->wf[i] = test_rng_uniform(s) * 0.1f;
        for (int tok = 0; tok < TOKS; tok++)
            for (int i = 0; i < COLS; i++) b->x[tok][i] = test_rng_uniform(s) * 3.0f;
        fl_quantize_row(t, b->wf, b->w, COLS);
        const void *act = b->x, *aref = b->x;
        size_t stride = sizeof b->x[0];
        if (kind != FL_ACT_F32) {
            fl_quantize_act_fn q = kind == FL_ACT_Q8K ? k->quantize_q8k : k->quantize_q8a;
            fl_quantize_act_fn qr = kind == FL_ACT_Q8K ? ref->quantize_q8k : ref->quantize_q8a;
            size_t bytes = fl_act_row_bytes(t, COLS);
            for (int tok = 0; tok < TOKS; tok++) {
                q(b->x[tok], b->act[tok], COLS);
                qr(b->x[tok], b->act_ref[tok], COLS);
                /* activation quantization is exact on every path */
                assert_memory_equal(b->act[tok], b->act_ref[tok], bytes);
            }
            act = b->act;
            aref = b->act_ref;
            stride = sizeof b->act[0];
        }
        float want[TOKS], got[TOKS];
        ref->dot[t](COLS, b->w, aref, stride, TOKS, want);
        k->dot[t](COLS, b->w, act, stride, TOKS, got);
        for (int i = 0; i < TOKS; i++) {
            double tol = 1e-5 * magnitude(t, b->w, b->x[i], COLS);
            if (fabs((double)got[i] - want[i]) > tol)
                fail_msg("%s %s: %.9g vs %.9g (tol %.3g)", fl_simd_name(level),
                         fl_type_traits_of(t)->name, got[i], want[i], tol);
        }
        checked++;
    }
    return checked;
}

static void simd_matches_scalar_on_real_data(void **state) {
    (void)state;
    compare_simd_levels(matches_scalar_on_real_data, 777);
}

/* Row r of a generation product through the table's generation kernel (or dot when it has
 * none): the activations are arranged as the kernel wants them. */
static float gemv_one(const fl_kernel_table *k, fl_type t, int64_t n, const void *w,
                      const void *act) {
    const fl_gemv_kernel *g = &k->gemv[t];
    float out;
    if (g->rows == NULL) {
        k->dot[t](n, w, act, 0, 1, &out);
        return out;
    }
    void *arranged = NULL;
    if (g->arrange) {
        arranged = malloc(g->act_bytes(n));
        assert_non_null(arranged);
        g->arrange(act, arranged, n);
    }
    g->rows(n, w, 0, 1, arranged ? arranged : act, &out);
    free(arranged);
    return out;
}

/* Generation kernels on GEMV_ROWS rows at once (full row batches and single rows), on widths
 * that end in a partial group of blocks: exactly the scalar dot products when the float side
 * is exact, within 1e-5 of the magnitude on real data. */
static int gemv_equals_scalar(const fl_kernel_table *k, const fl_kernel_table *ref, fl_simd level,
                              fl_type t, rows_buf *b) {
    static const int WIDTHS[] = {1024, 768, 512, 256, 224, 160, 96, 64, 32};
    const fl_gemv_kernel *g = &k->gemv[t];
    if (g->rows == NULL) return 0;
    uint64_t *s = &b->seed;
    float *wf = b->wf, *x = b->x[0];
    unsigned char *w = b->w_rows, *act = b->act[0];
    int64_t bs = fl_type_traits_of(t)->block_size;
    int checked = 0;
    for (size_t wi = 0; wi < sizeof WIDTHS / sizeof WIDTHS[0]; wi++) {
        int64_t n = WIDTHS[wi];
        if (n % bs) continue;
        size_t rb = fl_row_bytes(t, n);
        for (int exact = 0; exact < 2; exact++) {
            for (int i = 0; i < n; i++) x[i] = test_rng_uniform(s) * 3.0f;
            for (int r = 0; r < GEMV_ROWS; r++) {
                for (int i = 0; i < n; i++) wf[i] = test_rng_uniform(s) * 0.1f;
                fl_quantize_row(t, wf, w + r * rb, n);
                if (exact) make_scales_exact(t, w + r * rb, n, s);
            }
            if (exact)
                make_exact_activations(fl_act_kind_of(t), act, n, s);
            else
                (fl_act_kind_of(t) == FL_ACT_Q8K ? ref->quantize_q8k : ref->quantize_q8a)(x, act,
                                                                                          n);
            const void *a = act;
            if (g->arrange) {
                assert_true(g->act_bytes(n) <= sizeof b->arranged);
                g->arrange(act, b->arranged, n);
                a = b->arranged;
            }
            float got[GEMV_ROWS];
            g->rows(n, w, rb, GEMV_ROWS, a, got);
            for (int r = 0; r < GEMV_ROWS; r++) {
                float want;
                ref->dot[t](n, w + r * rb, act, 0, 1, &want);
                double tol = exact ? 0 : 1e-5 * magnitude(t, w + r * rb, x, n);
                if (fabs((double)got[r] - want) > tol)
                    fail_msg("%s %s n=%d row %d%s: %.9g != %.9g", fl_simd_name(level),
                             fl_type_traits_of(t)->name, (int)n, r, exact ? " (exact)" : "", got[r],
                             want);
            }
            checked++;
        }
    }
    return checked;
}

static void gemv_kernels_equal_scalar(void **state) {
    (void)state;
    compare_simd_levels(gemv_equals_scalar, 4242);
}

/* K-quant generation kernels at the ends of their integer ranges: weight rows of all-ones
 * bytes (every code at its maximum, Q5_K's fifth bits set) or random bytes, against
 * activations that are zero except two groups of four per super-block holding 127 or -128
 * (the sums of four products the kernels keep in 16 bits are then at their largest). With
 * exact scales every sum stays below 2^24, so the results must equal the scalar ones. */
static void k_gemv_exact_at_code_extremes(void **state) {
    (void)state;
    enum { ROWS = 6, NSB = 3, N = NSB * FL_QK_K };
    static const fl_type TYPES[] = {FL_TYPE_Q4_K, FL_TYPE_Q5_K, FL_TYPE_Q6_K};
    const fl_kernel_table *ref = fl_kernels_for(FL_SIMD_SCALAR);
    unsigned char *w = malloc((size_t)ROWS * N), *arranged = malloc(4 * N);
    fl_block_q8_k *act = malloc(NSB * sizeof *act);
    assert_true(w && arranged && act);
    uint64_t s = 777;
    int checked = 0;
    for (int level = FL_SIMD_AVX2; level < FL_SIMD_COUNT; level++) {
        const fl_kernel_table *k = fl_kernels_for((fl_simd)level);
        for (size_t ti = 0; k && ti < sizeof TYPES / sizeof TYPES[0]; ti++) {
            const fl_gemv_kernel *g = &k->gemv[TYPES[ti]];
            if (g->rows == NULL) continue;
            size_t rb = fl_row_bytes(TYPES[ti], N);
            for (int pattern = 0; pattern < 3; pattern++) {
                for (int r = 0; r < ROWS; r++) {
                    for (size_t i = 0; i < rb; i++)
                        w[r * rb + i] = r % 2 ? (unsigned char)test_rng_next(&s) : 0xff;
                    make_scales_exact(TYPES[ti], w + r * rb, N, &s);
                }
                memset(act, 0, NSB * sizeof *act);
                for (int b = 0; b < NSB; b++) {
                    act[b].d = 1.0f;
                    for (int grp = 0; grp < 2; grp++) {
                        int at = 4 * (int)(test_rng_next(&s) % (FL_QK_K / 4));
                        for (int i = at; i < at + 4; i++)
                            act[b].qs[i] = (int8_t)(pattern == 0   ? 127
                                                    : pattern == 1 ? -128
                                                                   : (i % 2 ? 127 : -128));
                    }
                    for (int i = 0; i < FL_QK_K; i++) act[b].bsums[i / 16] += act[b].qs[i];
                }
                const void *a = act;
                if (g->arrange) {
                    assert_true(g->act_bytes(N) <= 4 * N);
                    g->arrange(act, arranged, N);
                    a = arranged;
                }
                float got[ROWS];
                g->rows(N, w, rb, ROWS, a, got);
                for (int r = 0; r < ROWS; r++) {
                    float want;
                    ref->dot[TYPES[ti]](N, w + r * rb, act, 0, 1, &want);
                    if (got[r] != want)
                        fail_msg("%s %s pattern %d row %d: %.9g != %.9g",
                                 fl_simd_name((fl_simd)level), fl_type_traits_of(TYPES[ti])->name,
                                 pattern, r, got[r], want);
                }
                checked++;
            }
        }
    }
    free(w);
    free(arranged);
    free(act);
    if (checked == 0) skip(); /* no K-quant generation kernels on this CPU */
}

/* fl_matmul with any pool size and token count gives exactly the per-element dot products of
 * the active kernels (the generation kernels' for one token), and stays close to the float
 * product. */
static void matmul_tiles_and_threads_are_exact(void **state) {
    (void)state;
    enum { ROWS = 75, K = 512, MAXTOK = 70 };
    const fl_kernel_table *k = fl_kernels_for(fl_simd_active());
    float *wf = malloc(sizeof(float) * ROWS * K), *x = malloc(sizeof(float) * MAXTOK * K);
    float *y = malloc(sizeof(float) * MAXTOK * ROWS);
    unsigned char *w = malloc((size_t)ROWS * K * 4), *act = malloc((size_t)MAXTOK * K * 2);
    assert_true(wf && x && y && w && act);
    uint64_t s = 99;
    for (int i = 0; i < ROWS * K; i++) wf[i] = test_rng_uniform(&s) * 0.05f;
    for (int i = 0; i < MAXTOK * K; i++) x[i] = test_rng_uniform(&s);
    static const int TOKS_TRIED[] = {1, 3, 5, 70};
    fl_pool *pools[3] = {NULL, fl_pool_create(2), fl_pool_create(3)};
    assert_non_null(pools[1]);
    assert_non_null(pools[2]);
    for (int ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        fl_type t = WEIGHT_TYPES[ti];
        size_t rb = fl_row_bytes(t, K);
        for (int r = 0; r < ROWS; r++) fl_quantize_row(t, wf + r * K, w + r * rb, K);
        fl_tensor wt = {.type = t, .n_dims = 2, .ne = {K, ROWS, 1, 1}, .data = w};
        fl_act_kind kind = fl_act_kind_of(t);
        size_t as = kind == FL_ACT_F32 ? K * sizeof(float) : fl_act_row_bytes(t, K);
        for (int tok = 0; tok < MAXTOK; tok++) {
            if (kind == FL_ACT_Q8A) k->quantize_q8a(x + tok * K, act + tok * as, K);
            if (kind == FL_ACT_Q8K) k->quantize_q8k(x + tok * K, act + tok * as, K);
        }
        const void *a = kind == FL_ACT_F32 ? (const void *)x : act;
        for (size_t c = 0; c < sizeof TOKS_TRIED / sizeof TOKS_TRIED[0]; c++) {
            int n_tok = TOKS_TRIED[c];
            for (int p = 0; p < 3; p++) {
                fl_matmul(&wt, x, n_tok, y, pools[p]);
                for (int tok = 0; tok < n_tok; tok++)
                    for (int r = 0; r < ROWS; r++) {
                        float want;
                        if (n_tok == 1)
                            want = gemv_one(k, t, K, w + r * rb, a);
                        else
                            k->dot[t](K, w + r * rb, (const char *)a + tok * as, as, 1, &want);
                        float got = y[tok * ROWS + r];
                        double exact = 0, mag = 0;
                        for (int i = 0; i < K; i++) {
                            exact += (double)wf[r * K + i] * x[tok * K + i];
                            mag += fabs((double)wf[r * K + i] * x[tok * K + i]);
                        }
                        /* batches of FL_GEMM_MIN_TOK tokens or more go through gemm.c, whose
                         * sums are ordered differently (test_kernels_gemm.c checks it) */
                        bool differ =
                            n_tok < FL_GEMM_MIN_TOK ? got != want : fabs(got - want) > 1e-5 * mag;
                        if (differ)
                            fail_msg("%s n_tok=%d pool=%d [%d,%d]: %.9g != %.9g",
                                     fl_type_traits_of(t)->name, n_tok, p, tok, r, got, want);
                        /* quantization error of both operands, relative to the magnitude */
                        assert_true(fabs(got - exact) < 0.05 * mag);
                    }
            }
        }
    }
    fl_pool_free(pools[1]);
    fl_pool_free(pools[2]);
    free(wf);
    free(x);
    free(y);
    free(w);
    free(act);
}

/* fl_matmul_multi equals fl_matmul on each matrix, with formats of both activation kinds mixed
 * in one call, for one token and for several. */
static void matmul_multi_equals_separate_products(void **state) {
    (void)state;
    enum { K = 512, NTOK = 3 };
    static const fl_type TYPES[] = {FL_TYPE_Q5_0, FL_TYPE_Q8_0, FL_TYPE_Q4_K, FL_TYPE_F16};
    static const int ROWS[] = {37, 64, 5, 19};
    enum { PARTS = sizeof TYPES / sizeof TYPES[0] };
    float *wf = malloc(sizeof(float) * K), *x = malloc(sizeof(float) * NTOK * K);
    unsigned char *w[PARTS];
    float *y[PARTS], *want[PARTS];
    fl_tensor wt[PARTS];
    const fl_tensor *ws[PARTS];
    uint64_t s = 5150;
    for (int i = 0; i < NTOK * K; i++) x[i] = test_rng_uniform(&s);
    for (int p = 0; p < PARTS; p++) {
        size_t rb = fl_row_bytes(TYPES[p], K);
        w[p] = malloc(rb * ROWS[p]);
        y[p] = malloc(sizeof(float) * NTOK * ROWS[p]);
        want[p] = malloc(sizeof(float) * NTOK * ROWS[p]);
        assert_true(w[p] && y[p] && want[p]);
        for (int r = 0; r < ROWS[p]; r++) {
            for (int i = 0; i < K; i++) wf[i] = test_rng_uniform(&s) * 0.1f;
            fl_quantize_row(TYPES[p], wf, w[p] + r * rb, K);
        }
        wt[p] = (fl_tensor){.type = TYPES[p], .n_dims = 2, .ne = {K, ROWS[p], 1, 1}, .data = w[p]};
        ws[p] = &wt[p];
    }
    fl_pool *pool = fl_pool_create(2);
    assert_non_null(pool);
    for (int n_tok = 1; n_tok <= NTOK; n_tok += NTOK - 1) {
        for (int p = 0; p < PARTS; p++) fl_matmul(ws[p], x, n_tok, want[p], NULL);
        fl_matmul_multi(ws, PARTS, x, n_tok, y, pool);
        for (int p = 0; p < PARTS; p++)
            assert_memory_equal(y[p], want[p], sizeof(float) * n_tok * ROWS[p]);
    }
    fl_pool_free(pool);
    for (int p = 0; p < PARTS; p++) {
        free(w[p]);
        free(y[p]);
        free(want[p]);
    }
    free(wf);
    free(x);
}

static void dequantize_row_reads_the_right_row(void **state) {
    (void)state;
    enum { ROWS = 3, K = 256 };
    float wf[ROWS * K], out[K], ref[K];
    unsigned char w[ROWS * 300];
    for (int i = 0; i < ROWS * K; i++) wf[i] = (float)(i % 97) * 0.01f;
    size_t rb = fl_row_bytes(FL_TYPE_Q4_K, K);
    for (int r = 0; r < ROWS; r++) fl_quantize_row(FL_TYPE_Q4_K, wf + r * K, w + r * rb, K);
    fl_tensor wt = {.type = FL_TYPE_Q4_K, .n_dims = 2, .ne = {K, ROWS, 1, 1}, .data = w};
    fl_dequantize_row(&wt, 2, out);
    fl_dequantize(FL_TYPE_Q4_K, w + 2 * rb, ref, K);
    assert_memory_equal(out, ref, sizeof ref);
    assert_true(fl_kernels_support(FL_TYPE_Q6_K));
    assert_false(fl_kernels_support(FL_TYPE_Q2_K));
}

typedef struct share_count {
    _Atomic int hits[8];
} share_count;

static void count_share(void *p, int ith, int nth) {
    share_count *c = p;
    if (nth == 6) atomic_fetch_add(&c->hits[ith], 1);
}

/* More threads than cores: shares whose worker is late are run by the caller, but every share
 * of every task still runs exactly once. */
static void pool_runs_every_share_once_when_oversubscribed(void **state) {
    (void)state;
    enum { RUNS = 3000 };
    fl_pool *pool = fl_pool_create(6);
    assert_non_null(pool);
    share_count c;
    for (int i = 0; i < 8; i++) atomic_init(&c.hits[i], 0);
    for (int r = 0; r < RUNS; r++) fl_pool_run(pool, count_share, &c);
    fl_pool_free(pool);
    for (int i = 0; i < 6; i++) assert_int_equal(atomic_load(&c.hits[i]), RUNS);
}

static void simd_env_caps_the_level(void **state) {
    (void)state;
    const char *v = getenv("FLUID_SIMD");
    if (v && strcmp(v, "off") == 0)
        assert_int_equal(fl_simd_active(), FL_SIMD_SCALAR);
    else if (v == NULL)
        assert_true(fl_simd_active() == FL_SIMD_AVX512 || !fl_simd_available(FL_SIMD_AVX512));
    print_message("kernels in use: %s\n", fl_simd_name(fl_simd_active()));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simd_dots_equal_scalar_exactly),
        cmocka_unit_test(simd_matches_scalar_on_real_data),
        cmocka_unit_test(gemv_kernels_equal_scalar),
        cmocka_unit_test(k_gemv_exact_at_code_extremes),
        cmocka_unit_test(matmul_tiles_and_threads_are_exact),
        cmocka_unit_test(matmul_multi_equals_separate_products),
        cmocka_unit_test(dequantize_row_reads_the_right_row),
        cmocka_unit_test(pool_runs_every_share_once_when_oversubscribed),
        cmocka_unit_test(simd_env_caps_the_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The prompt GEMM (gemm.c): every SIMD level's micro-kernels and panel decoders give exactly
 * the scalar GEMM's results (same operations in the same order), on shapes with ragged edges
 * (rows and tokens that are not multiples of the tiles, one row, one token); the scalar GEMM
 * matches the reference dot kernels (kernels_scalar.c) within 1e-5 of the sum of |w x|; and
 * fl_matmul sends batches to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gemm.h"
#include "engine/gemm_impl.h"
#include "engine/kernels.h"
#include "engine/kernels_impl.h"
#include "engine/quant.h"
#include "support/rng.h"

static const fl_type TYPES[] = {
    FL_TYPE_Q8_0, FL_TYPE_Q4_0, FL_TYPE_Q4_1, FL_TYPE_Q5_0, FL_TYPE_Q5_1, FL_TYPE_Q4_K,
    FL_TYPE_Q5_K, FL_TYPE_Q6_K, FL_TYPE_F32,  FL_TYPE_F16,  FL_TYPE_BF16,
};
enum { N_TYPES = sizeof TYPES / sizeof TYPES[0] };

typedef struct shape {
    int rows, k, n_tok;
} shape;

/* Ragged shapes: rows below, at and past the panel sizes (4, 8, 16, 32), odd token counts. */
static const shape SHAPES[] = {
    {1, 256, 1}, {5, 512, 9}, {33, 256, 13}, {70, 768, 8}, {64, 512, 17}, {17, 1024, 3},
};
enum { N_SHAPES = sizeof SHAPES / sizeof SHAPES[0] };

typedef struct problem {
    fl_tensor w;
    float *wf, *x;
    unsigned char *wq;
} problem;

/* Random weights quantized to `type` (K rows of float types may be any length; keep them
 * multiples of 256 so every type shares the shapes). */
static void make_problem(problem *p, fl_type type, const shape *sh, uint64_t *s) {
    size_t rb = fl_row_bytes(type, sh->k);
    p->wf = malloc(sizeof(float) * (size_t)sh->rows * sh->k);
    p->x = malloc(sizeof(float) * (size_t)sh->n_tok * sh->k);
    p->wq = malloc(rb * (size_t)sh->rows);
    assert_true(p->wf && p->x && p->wq);
    for (int i = 0; i < sh->rows * sh->k; i++) p->wf[i] = test_rng_uniform(s) * 0.1f;
    for (int i = 0; i < sh->n_tok * sh->k; i++) p->x[i] = test_rng_uniform(s) * 3.0f;
    for (int r = 0; r < sh->rows; r++)
        assert_int_equal(fl_quantize_row(type, p->wf + (size_t)r * sh->k, p->wq + r * rb, sh->k),
                         rb);
    p->w = (fl_tensor){.type = type, .n_dims = 2, .ne = {sh->k, sh->rows, 1, 1}, .data = p->wq};
}

static void free_problem(problem *p) {
    free(p->wf);
    free(p->x);
    free(p->wq);
}

static void simd_gemm_equals_scalar_gemm_exactly(void **state) {
    (void)state;
    uint64_t s = 2024;
    fl_pool *pool = fl_pool_create(2);
    assert_non_null(pool);
    int checked = 0;
    for (int ti = 0; ti < N_TYPES; ti++) {
        for (int si = 0; si < N_SHAPES; si++) {
            const shape *sh = &SHAPES[si];
            problem p;
            make_problem(&p, TYPES[ti], sh, &s);
            size_t n_out = (size_t)sh->n_tok * sh->rows;
            float *want = malloc(n_out * sizeof(float)), *got = malloc(n_out * sizeof(float));
            assert_true(want && got);
            assert_true(fl_gemm_at(FL_SIMD_SCALAR, &p.w, p.x, sh->n_tok, want, NULL));
            for (int level = FL_SIMD_AVX2; level < FL_SIMD_COUNT; level++) {
                if (!fl_simd_available((fl_simd)level)) continue;
                for (int threads = 0; threads < 2; threads++) {
                    memset(got, 0xff, n_out * sizeof(float));
                    assert_true(fl_gemm_at((fl_simd)level, &p.w, p.x, sh->n_tok, got,
                                           threads ? pool : NULL));
                    for (size_t i = 0; i < n_out; i++)
                        if (got[i] != want[i])
                            fail_msg("%s %s rows=%d k=%d tokens=%d: [%zu] %.9g != %.9g",
                                     fl_simd_name((fl_simd)level),
                                     fl_type_traits_of(TYPES[ti])->name, sh->rows, sh->k, sh->n_tok,
                                     i, got[i], want[i]);
                    checked++;
                }
            }
            free(want);
            free(got);
            free_problem(&p);
        }
    }
    fl_pool_free(pool);
    if (checked == 0) skip(); /* no SIMD level on this CPU */
}

/* The reference: each output from the scalar dot kernel of kernels_scalar.c on activations
 * converted by the scalar quantizers. */
static float reference_dot(const problem *p, int r, int t) {
    const fl_kernel_table *ref = fl_kernels_for(FL_SIMD_SCALAR);
    fl_type type = p->w.type;
    int64_t k = p->w.ne[0];
    const float *x = p->x + (size_t)t * k;
    const unsigned char *row = p->wq + (size_t)r * fl_row_bytes(type, k);
    float out;
    fl_act_kind kind = fl_act_kind_of(type);
    if (kind == FL_ACT_F32) {
        ref->dot[type](k, row, x, 0, 1, &out);
        return out;
    }
    void *act = malloc(fl_act_row_bytes(type, k));
    assert_non_null(act);
    (kind == FL_ACT_Q8K ? ref->quantize_q8k : ref->quantize_q8a)(x, act, k);
    ref->dot[type](k, row, act, 0, 1, &out);
    free(act);
    return out;
}

static void scalar_gemm_matches_reference_dots(void **state) {
    (void)state;
    uint64_t s = 77;
    for (int ti = 0; ti < N_TYPES; ti++) {
        for (int si = 0; si < N_SHAPES; si++) {
            const shape *sh = &SHAPES[si];
            problem p;
            make_problem(&p, TYPES[ti], sh, &s);
            float *got = malloc(sizeof(float) * (size_t)sh->n_tok * sh->rows);
            float *wd = malloc(sizeof(float) * (size_t)sh->k);
            assert_true(got && wd);
            assert_true(fl_gemm_at(FL_SIMD_SCALAR, &p.w, p.x, sh->n_tok, got, NULL));
            for (int r = 0; r < sh->rows; r++) {
                fl_dequantize_row(&p.w, r, wd);
                for (int t = 0; t < sh->n_tok; t++) {
                    double mag = 0;
                    for (int i = 0; i < sh->k; i++)
                        mag += fabs((double)wd[i] * p.x[(size_t)t * sh->k + i]);
                    float want = reference_dot(&p, r, t), g = got[(size_t)t * sh->rows + r];
                    if (fabs((double)g - want) > 1e-5 * mag)
                        fail_msg("%s rows=%d k=%d tokens=%d [%d,%d]: %.9g vs %.9g (mag %.3g)",
                                 fl_type_traits_of(TYPES[ti])->name, sh->rows, sh->k, sh->n_tok, t,
                                 r, g, want, mag);
                }
            }
            free(got);
            free(wd);
            free_problem(&p);
        }
    }
}

/* fl_matmul hands batches of FL_GEMM_MIN_TOK tokens or more to the GEMM of the active level. */
static void matmul_uses_gemm_for_batches(void **state) {
    (void)state;
    uint64_t s = 5;
    shape sh = {40, 512, FL_GEMM_MIN_TOK + 3};
    problem p;
    make_problem(&p, FL_TYPE_Q4_K, &sh, &s);
    size_t n_out = (size_t)sh.n_tok * sh.rows;
    float *a = malloc(n_out * sizeof(float)), *b = malloc(n_out * sizeof(float));
    assert_true(a && b);
    fl_matmul(&p.w, p.x, sh.n_tok, a, NULL);
    assert_true(fl_gemm_at(fl_simd_active(), &p.w, p.x, sh.n_tok, b, NULL));
    assert_memory_equal(a, b, n_out * sizeof(float));
    free(a);
    free(b);
    free_problem(&p);
}

static void gemm_refuses_types_it_cannot_run(void **state) {
    (void)state;
    static const fl_type OTHERS[] = {FL_TYPE_Q8_K, FL_TYPE_Q2_K, FL_TYPE_I32};
    float x[256] = {0}, y[4] = {0};
    unsigned char data[2048] = {0};
    for (size_t i = 0; i < sizeof OTHERS / sizeof OTHERS[0]; i++) {
        fl_tensor w = {.type = OTHERS[i], .n_dims = 2, .ne = {256, 1, 1, 1}, .data = data};
        assert_false(fl_gemm(&w, x, 1, y, NULL));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simd_gemm_equals_scalar_gemm_exactly),
        cmocka_unit_test(scalar_gemm_matches_reference_dots),
        cmocka_unit_test(matmul_uses_gemm_for_batches),
        cmocka_unit_test(gemm_refuses_types_it_cannot_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

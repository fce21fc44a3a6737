/* Half-precision conversions, the compute pool and the reference matmul. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "engine/kernels.h"
#include "engine/tensor.h"
#include "engine/threadpool.h"

static void f16_round_trips_every_finite_half(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue; /* inf/nan */
        assert_int_equal(fl_f32_to_f16(fl_f16_to_f32((uint16_t)h)), h);
    }
    assert_true(fl_f16_to_f32(0x3c00) == 1.0f);
    assert_true(fl_f16_to_f32(fl_f32_to_f16(65504.0f)) == 65504.0f);
    assert_true(isinf(fl_f16_to_f32(fl_f32_to_f16(1e6f))));
}

static void bf16_rounds_to_nearest_even(void **state) {
    (void)state;
    assert_true(fl_bf16_to_f32(fl_f32_to_bf16(1.0f)) == 1.0f);
    assert_true(fl_bf16_to_f32(fl_f32_to_bf16(-2.5f)) == -2.5f);
    float v = 1.0f + 1.0f / 256.0f; /* exactly half-way: rounds to even (1.0) */
    assert_true(fl_bf16_to_f32(fl_f32_to_bf16(v)) == 1.0f);
}

static void count_task(void *ctx, int ith, int nth) {
    long *hits = ctx;
    long b, e;
    fl_split_range(1000, ith, nth, &b, &e);
    for (long i = b; i < e; i++) hits[i]++;
}

static void pool_covers_range_once(void **state) {
    (void)state;
    fl_pool *pool = fl_pool_create(3);
    assert_non_null(pool);
    long hits[1000] = {0};
    for (int rep = 0; rep < 50; rep++) fl_pool_run(pool, count_task, hits);
    for (int i = 0; i < 1000; i++) assert_int_equal(hits[i], 50);
    fl_pool_free(pool);
}

static void matmul_matches_naive_for_float_types(void **state) {
    (void)state;
    enum { ROWS = 7, COLS = 4100, TOK = 3 };
    float *w = malloc(sizeof(float) * ROWS * COLS);
    uint16_t *wh = malloc(2 * ROWS * COLS);
    float *x = malloc(sizeof(float) * TOK * COLS);
    float y[TOK * ROWS];
    assert_non_null(w);
    assert_non_null(wh);
    assert_non_null(x);
    srand(1);
    for (int i = 0; i < ROWS * COLS; i++) {
        wh[i] = fl_f32_to_f16((float)rand() / RAND_MAX - 0.5f);
        w[i] = fl_f16_to_f32(wh[i]);
    }
    for (int i = 0; i < TOK * COLS; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    fl_pool *pool = fl_pool_create(2);
    fl_tensor tf = {.type = FL_TYPE_F32, .n_dims = 2, .ne = {COLS, ROWS, 1, 1}, .data = w};
    fl_tensor th = {.type = FL_TYPE_F16, .n_dims = 2, .ne = {COLS, ROWS, 1, 1}, .data = wh};
    const fl_tensor *ts[2] = {&tf, &th};
    for (int k = 0; k < 2; k++) {
        fl_matmul(ts[k], x, TOK, y, pool);
        for (int t = 0; t < TOK; t++)
            for (int r = 0; r < ROWS; r++) {
                double ref = 0;
                for (int c = 0; c < COLS; c++) ref += (double)w[r * COLS + c] * x[t * COLS + c];
                assert_true(fabs(y[t * ROWS + r] - ref) < 1e-3);
            }
    }
    fl_pool_free(pool);
    free(w);
    free(wh);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f16_round_trips_every_finite_half),
        cmocka_unit_test(bf16_rounds_to_nearest_even),
        cmocka_unit_test(pool_covers_range_once),
        cmocka_unit_test(matmul_matches_naive_for_float_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

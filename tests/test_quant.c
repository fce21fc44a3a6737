/* Block formats: hand-built blocks decode to the values the GGUF layouts define, quantize ->
 * dequantize round trips stay within per-type error bounds, and the Q4_K_M / Q5_K_M policy. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/quant.h"
#include "support/rng.h"

static void q4_0_layout(void **state) {
    (void)state;
    fl_block_q4_0 b = {.d = fl_f32_to_f16(0.5f)};
    b.qs[0] = 0x21; /* element 0 = code 1, element 16 = code 2 */
    b.qs[15] = 0xf0;
    float y[32];
    assert_true(fl_dequantize(FL_TYPE_Q4_0, &b, y, 32));
    assert_true(y[0] == 0.5f * (1 - 8));
    assert_true(y[16] == 0.5f * (2 - 8));
    assert_true(y[15] == 0.5f * (0 - 8));
    assert_true(y[31] == 0.5f * (15 - 8));
}

static void q5_1_layout(void **state) {
    (void)state;
    fl_block_q5_1 b = {.d = fl_f32_to_f16(2.0f), .m = fl_f32_to_f16(-1.0f)};
    b.qs[3] = 0x5a; /* element 3 low nibble 10, element 19 high nibble 5 */
    b.qh[0] = 0x08; /* fifth bit of element 3 */
    b.qh[2] = 0x08; /* fifth bit of element 19 */
    float y[32];
    assert_true(fl_dequantize(FL_TYPE_Q5_1, &b, y, 32));
    assert_true(y[3] == 2.0f * 26 - 1.0f);
    assert_true(y[19] == 2.0f * 21 - 1.0f);
    assert_true(y[0] == -1.0f);
}

static void k4_scales_pack_every_value(void **state) {
    (void)state;
    /* quantize a block whose sub-blocks need distinct scales, then unpack them */
    float x[256];
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) x[32 * j + i] = (float)(j + 1) * ((float)i - 10.0f) * 0.01f;
    fl_block_q4_k b;
    assert_int_equal(fl_quantize_row(FL_TYPE_Q4_K, x, &b, 256), 144);
    int prev_sc = 0;
    for (int j = 0; j < 8; j++) {
        int sc, m;
        fl_k4_scale_min(b.scales, j, &sc, &m);
        assert_true(sc > prev_sc); /* scales grow with j */
        assert_true(m > 0);
        prev_sc = sc;
    }
    assert_int_equal(prev_sc, 63);
}

static void q4_k_layout(void **state) {
    (void)state;
    fl_block_q4_k b;
    memset(&b, 0, sizeof b);
    b.d = fl_f32_to_f16(1.0f);
    b.dmin = fl_f32_to_f16(0.5f);
    b.scales[1] = 3;        /* sub-block 1: scale 3 */
    b.scales[5] = 2;        /* sub-block 1: min 2 */
    b.scales[8 + 1] = 0x47; /* sub-block 5: scale 7, min 4 (low nibbles) */
    b.qs[0] = 0x90;         /* element 32 (sub-block 1): code 9 */
    b.qs[64 + 5] = 0x0b;    /* element 128+5 (sub-block 4): code 11, scale 0 */
    b.qs[64 + 7] = 0xc0;    /* element 160+7 (sub-block 5): code 12 */
    float y[256];
    assert_true(fl_dequantize(FL_TYPE_Q4_K, &b, y, 256));
    assert_true(y[32] == 3.0f * 9 - 0.5f * 2);
    assert_true(y[133] == 0.0f);
    assert_true(y[167] == 7.0f * 12 - 0.5f * 4);
}

static void q6_k_layout(void **state) {
    (void)state;
    fl_block_q6_k b;
    memset(&b, 0, sizeof b);
    b.d = fl_f32_to_f16(0.25f);
    for (int j = 0; j < 16; j++) b.scales[j] = (int8_t)(j - 8);
    /* element 128 + 64 + 3 (second half, third quarter): high nibble of ql[64+3], qh bits 4-5
     * of qh[32+3] */
    b.ql[64 + 3] = 0x70;
    b.qh[32 + 3] = 0x20; /* high bits = 2 */
    float y[256];
    assert_true(fl_dequantize(FL_TYPE_Q6_K, &b, y, 256));
    int e = 128 + 64 + 3;
    assert_true(y[e] == 0.25f * (float)(e / 16 - 8) * (float)((7 | (2 << 4)) - 32));
    assert_true(y[0] == 0.25f * -8 * -32);
}

typedef struct rmse_case {
    fl_type type;
    double bound; /* RMSE of normal(0,1) data after a round trip */
} rmse_case;

/* Bounds about 15% above the RMSE this quantizer measured on these 64K normal(0,1) samples:
 * q8_0 0.00537, q4_0 0.0860, q4_1 0.0781, q5_0 0.0427, q5_1 0.0379, q4_k 0.0719, q5_k 0.0362,
 * q6_k 0.0175, q8_k 0.00704 (run with SHOW=1 to print them). */
static const rmse_case RMSE_CASES[] = {
    {FL_TYPE_Q8_0, 0.0062}, {FL_TYPE_Q4_0, 0.099}, {FL_TYPE_Q4_1, 0.090},  {FL_TYPE_Q5_0, 0.049},
    {FL_TYPE_Q5_1, 0.044},  {FL_TYPE_Q4_K, 0.083}, {FL_TYPE_Q5_K, 0.042},  {FL_TYPE_Q6_K, 0.0202},
    {FL_TYPE_Q8_K, 0.0081}, {FL_TYPE_F16, 0.0004}, {FL_TYPE_BF16, 0.0032}, {FL_TYPE_F32, 0.0},
};

static void round_trip_error_within_bounds(void **state) {
    (void)state;
    enum { N = 65536 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    void *q = malloc(N * sizeof(float));
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(q);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < N; i++) x[i] = test_rng_normal(&seed);
    for (size_t c = 0; c < sizeof RMSE_CASES / sizeof RMSE_CASES[0]; c++) {
        fl_type t = RMSE_CASES[c].type;
        size_t bytes = fl_quantize_row(t, x, q, N);
        assert_int_equal(bytes, fl_row_bytes(t, N));
        assert_true(fl_dequantize(t, q, y, N));
        double se = 0;
        for (int i = 0; i < N; i++) se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        double rmse = sqrt(se / N);
        if (getenv("SHOW")) print_message("%s %.5f\n", fl_type_traits_of(t)->name, rmse);
        if (rmse > RMSE_CASES[c].bound)
            fail_msg("%s: rmse %.5f > bound %.5f", fl_type_traits_of(t)->name, rmse,
                     RMSE_CASES[c].bound);
    }
    free(x);
    free(y);
    free(q);
}

static void constant_and_zero_blocks_are_exact(void **state) {
    (void)state;
    static const fl_type TYPES[] = {FL_TYPE_Q8_0, FL_TYPE_Q4_0, FL_TYPE_Q4_1, FL_TYPE_Q5_0,
                                    FL_TYPE_Q5_1, FL_TYPE_Q4_K, FL_TYPE_Q5_K, FL_TYPE_Q6_K};
    float x[256] = {0}, y[256];
    unsigned char q[512];
    for (size_t c = 0; c < sizeof TYPES / sizeof TYPES[0]; c++) {
        assert_true(fl_quantize_row(TYPES[c], x, q, 256) > 0);
        assert_true(fl_dequantize(TYPES[c], q, y, 256));
        for (int i = 0; i < 256; i++) assert_true(y[i] == 0.0f);
    }
}

static void rejects_partial_blocks(void **state) {
    (void)state;
    float x[48] = {0};
    unsigned char q[256];
    assert_int_equal(fl_quantize_row(FL_TYPE_Q4_0, x, q, 48), 0);
    assert_int_equal(fl_quantize_row(FL_TYPE_Q4_K, x, q, 32), 0);
    assert_false(fl_dequantize(FL_TYPE_Q6_K, q, x, 48));
    assert_false(fl_quant_supported(FL_TYPE_Q2_K));
}

static void mixture_policy(void **state) {
    (void)state;
    fl_mixture_model m = {.n_layer = 24, .has_output = false};
    fl_ftype ft;
    assert_true(fl_ftype_from_name("Q4_K_M", &ft));
    assert_int_equal(ft, FL_FTYPE_MOSTLY_Q4_K_M);
    assert_false(fl_ftype_from_name("q3_k_s", &ft));
    /* norms and other 1-D tensors stay F32 */
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.0.attn_norm.weight", 1, 896, &m), FL_TYPE_F32);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.0.attn_q.bias", 1, 896, &m), FL_TYPE_F32);
    /* attn_v / ffn_down: more bits in layers 0-2, 21-23 and every third layer from 3 */
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.0.attn_v.weight", 2, 1024, &m), FL_TYPE_Q6_K);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.3.attn_v.weight", 2, 1024, &m), FL_TYPE_Q4_K);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.5.ffn_down.weight", 2, 1024, &m),
                     FL_TYPE_Q6_K);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.23.ffn_down.weight", 2, 1024, &m),
                     FL_TYPE_Q6_K);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.4.ffn_up.weight", 2, 1024, &m), FL_TYPE_Q4_K);
    /* tied embeddings act as the output matrix */
    assert_int_equal(fl_mixture_tensor_type(ft, "token_embd.weight", 2, 1024, &m), FL_TYPE_Q6_K);
    m.has_output = true;
    assert_int_equal(fl_mixture_tensor_type(ft, "token_embd.weight", 2, 1024, &m), FL_TYPE_Q4_K);
    assert_int_equal(fl_mixture_tensor_type(ft, "output.weight", 2, 1024, &m), FL_TYPE_Q6_K);
    /* rows that are not whole super-blocks fall back */
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.4.ffn_up.weight", 2, 896, &m), FL_TYPE_Q5_0);
    assert_int_equal(fl_mixture_tensor_type(ft, "output.weight", 2, 896, &m), FL_TYPE_Q8_0);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.4.ffn_up.weight", 2, 40, &m), FL_TYPE_F16);
    assert_true(fl_ftype_from_name("q5_k_m", &ft));
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.4.ffn_up.weight", 2, 896, &m), FL_TYPE_Q5_1);
    assert_true(fl_ftype_from_name("q8_0", &ft));
    assert_int_equal(fl_mixture_tensor_type(ft, "output.weight", 2, 1024, &m), FL_TYPE_Q8_0);
    assert_true(fl_ftype_from_name("q4_0", &ft));
    assert_int_equal(fl_mixture_tensor_type(ft, "output.weight", 2, 1024, &m), FL_TYPE_Q6_K);
    assert_int_equal(fl_mixture_tensor_type(ft, "blk.0.attn_v.weight", 2, 1024, &m), FL_TYPE_Q4_0);
    assert_string_equal(fl_ftype_name(FL_FTYPE_MOSTLY_Q5_K_M), "q5_k_m");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(q4_0_layout),
        cmocka_unit_test(q5_1_layout),
        cmocka_unit_test(k4_scales_pack_every_value),
        cmocka_unit_test(q4_k_layout),
        cmocka_unit_test(q6_k_layout),
        cmocka_unit_test(round_trip_error_within_bounds),
        cmocka_unit_test(constant_and_zero_blocks_are_exact),
        cmocka_unit_test(rejects_partial_blocks),
        cmocka_unit_test(mixture_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

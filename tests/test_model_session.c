/* Sessions: context limits, argument checks, which logits are kept, and that the KV cache gives
 * the same logits whether a sequence is evaluated at once, in pieces, after a rewind, or split
 * into internal batches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/model.h"
#include "support/tiny_llm.h"

enum { N_TOK = 20 };

typedef struct fixture {
    fluid_model *model;
    fluid_pool *pool;
    int32_t tokens[N_TOK];
    float *reference; /* logits of the N_TOK tokens evaluated in one decode */
} fixture;

static size_t row_floats(void) {
    return TINY_LLM_VOCAB;
}

static fluid_session *new_session(fixture *f, int32_t n_ctx) {
    fluid_error err = {0};
    fluid_session *s = fluid_session_create(f->model, n_ctx, &err);
    if (s == NULL) fail_msg("%s", err.message);
    return s;
}

static void decode_ok(fluid_session *s, const int32_t *tokens, int32_t n, fluid_pool *pool) {
    fluid_error err = {0};
    if (fluid_session_decode(s, tokens, n, pool, &err) != FLUID_OK) fail_msg("%s", err.message);
}

/* Engine and reference logits agree within 1e-5 of the largest (the batch shape may change the
 * order of additions in faster kernels). */
static void expect_row(const float *got, const float *want, int pos) {
    assert_non_null(got);
    float max_ref = 0.0f, max_diff = 0.0f;
    for (size_t j = 0; j < row_floats(); j++) {
        max_ref = fmaxf(max_ref, fabsf(want[j]));
        max_diff = fmaxf(max_diff, fabsf(got[j] - want[j]));
    }
    if (!(max_diff <= 1e-5f * max_ref))
        fail_msg("position %d: difference %g (max %g)", pos, max_diff, max_ref);
}

/* Rows [first, first + n) of the reference against logits 0..n-1 of the last decode. */
static void expect_reference_rows(const fixture *f, const fluid_session *s, int first, int n) {
    for (int i = 0; i < n; i++)
        expect_row(fluid_session_logits(s, i), f->reference + (size_t)(first + i) * row_floats(),
                   first + i);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    char *path = tiny_llm_temp_path();
    if (f == NULL || path == NULL) return -1;
    bool written = tiny_llm_write(path, &(tiny_llm_options){.arch = "qwen2"});
    fluid_error err = {0};
    f->model = written ? fluid_model_load(path, &err) : NULL;
    unlink(path);
    free(path);
    f->pool = fluid_pool_create(2);
    f->reference = malloc(N_TOK * row_floats() * sizeof(float));
    if (f->model == NULL || f->pool == NULL || f->reference == NULL) return -1;
    for (int i = 0; i < N_TOK; i++) f->tokens[i] = (i * 7 + 3) % TINY_LLM_VOCAB;
    fluid_session *s = fluid_session_create(f->model, 0, &err);
    if (s == NULL) return -1;
    fluid_session_keep_all_logits(s, true);
    if (fluid_session_decode(s, f->tokens, N_TOK, f->pool, &err) != FLUID_OK) return -1;
    for (int i = 0; i < N_TOK; i++)
        memcpy(f->reference + (size_t)i * row_floats(), fluid_session_logits(s, i),
               row_floats() * sizeof(float));
    fluid_session_free(s);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    fluid_model_free(f->model);
    fluid_pool_free(f->pool);
    free(f->reference);
    free(f);
    return 0;
}

static void sizes_follow_the_model(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 0);
    assert_int_equal(fluid_session_n_ctx(s), 64); /* the training context (below 4096) */
    assert_int_equal(fluid_session_n_past(s), 0);
    size_t kv_dim = 2 * (TINY_LLM_EMBD / TINY_LLM_HEADS);
    assert_int_equal(fluid_session_bytes(s), 2 * TINY_LLM_LAYERS * 64 * kv_dim * sizeof(float));
    fluid_session_free(s);
}

/* The estimate from the file alone is what a session of that context holds. */
static void context_bytes_from_the_file(void **state) {
    fixture *f = *state;
    char *path = tiny_llm_temp_path();
    assert_non_null(path);
    assert_true(tiny_llm_write(path, &(tiny_llm_options){.arch = "qwen2"}));
    static const int32_t contexts[] = {0, 24};
    for (size_t i = 0; i < sizeof contexts / sizeof contexts[0]; i++) {
        uint64_t bytes = 0;
        fluid_error err = {0};
        assert_int_equal(fluid_model_context_bytes(path, contexts[i], &bytes, &err), FLUID_OK);
        fluid_session *s = new_session(f, contexts[i]);
        assert_int_equal(bytes, fluid_session_bytes(s));
        fluid_session_free(s);
    }
    uint64_t bytes = 1;
    fluid_error err = {0};
    assert_int_not_equal(fluid_model_context_bytes(path, -1, &bytes, &err), FLUID_OK);
    unlink(path);
    assert_int_not_equal(fluid_model_context_bytes(path, 0, &bytes, &err), FLUID_OK);
    assert_int_equal(bytes, 0);
    assert_true(strlen(err.message) > 0);
    free(path);
}

static void refuses_what_does_not_fit(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 24);
    fluid_error err = {0};
    decode_ok(s, f->tokens, N_TOK, f->pool);
    assert_int_equal(fluid_session_decode(s, f->tokens, 5, f->pool, &err), FLUID_ERR_CONTEXT_FULL);
    assert_int_equal(fluid_session_n_past(s), N_TOK);
    decode_ok(s, f->tokens, 4, f->pool);
    assert_int_equal(fluid_session_n_past(s), 24);
    fluid_session_free(s);
}

static void refuses_bad_tokens(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 0);
    fluid_error err = {0};
    int32_t bad[] = {1, TINY_LLM_VOCAB};
    assert_int_equal(fluid_session_decode(s, bad, 2, f->pool, &err), FLUID_ERR_ARGUMENT);
    bad[1] = -1;
    assert_int_equal(fluid_session_decode(s, bad, 2, f->pool, &err), FLUID_ERR_ARGUMENT);
    assert_int_equal(fluid_session_decode(s, bad, 0, f->pool, &err), FLUID_ERR_ARGUMENT);
    assert_int_equal(fluid_session_n_past(s), 0);
    assert_null(fluid_session_logits(s, -1));
    fluid_session_free(s);
}

static void keeps_only_the_last_logits_by_default(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 0);
    decode_ok(s, f->tokens, N_TOK, f->pool);
    assert_non_null(fluid_session_logits(s, -1));
    assert_ptr_equal(fluid_session_logits(s, -1), fluid_session_logits(s, N_TOK - 1));
    assert_null(fluid_session_logits(s, 0));
    assert_null(fluid_session_logits(s, N_TOK));
    expect_row(fluid_session_logits(s, -1), f->reference + (N_TOK - 1) * row_floats(), N_TOK - 1);
    fluid_session_free(s);
}

static void pieces_give_the_same_logits(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 0);
    fluid_session_keep_all_logits(s, true);
    int cuts[] = {0, 1, 8, 9, 15, N_TOK};
    for (int c = 0; c + 1 < 6; c++) {
        decode_ok(s, f->tokens + cuts[c], cuts[c + 1] - cuts[c], c % 2 ? NULL : f->pool);
        expect_reference_rows(f, s, cuts[c], cuts[c + 1] - cuts[c]);
    }
    fluid_session_free(s);
}

static void internal_batches_give_the_same_logits(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 0);
    s->max_batch = 3; /* the prompt is split into 7 batches */
    fluid_session_keep_all_logits(s, true);
    decode_ok(s, f->tokens, N_TOK, f->pool);
    expect_reference_rows(f, s, 0, N_TOK);
    fluid_session_free(s);
}

static void rewind_forgets_the_tail(void **state) {
    fixture *f = *state;
    fluid_session *s = new_session(f, 0);
    int32_t other[N_TOK];
    for (int i = 0; i < N_TOK; i++) other[i] = (f->tokens[i] + 11) % TINY_LLM_VOCAB;
    memcpy(other, f->tokens, 8 * sizeof(int32_t)); /* same first 8 tokens */
    decode_ok(s, other, N_TOK, f->pool);
    fluid_session_rewind(s, 8);
    assert_int_equal(fluid_session_n_past(s), 8);
    assert_null(fluid_session_logits(s, -1));
    fluid_session_rewind(s, 100); /* never moves forward */
    assert_int_equal(fluid_session_n_past(s), 8);
    fluid_session_keep_all_logits(s, true);
    decode_ok(s, f->tokens + 8, N_TOK - 8, f->pool);
    expect_reference_rows(f, s, 8, N_TOK - 8);
    fluid_session_free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_follow_the_model),
        cmocka_unit_test(context_bytes_from_the_file),
        cmocka_unit_test(refuses_what_does_not_fit),
        cmocka_unit_test(refuses_bad_tokens),
        cmocka_unit_test(keeps_only_the_last_logits_by_default),
        cmocka_unit_test(pieces_give_the_same_logits),
        cmocka_unit_test(internal_batches_give_the_same_logits),
        cmocka_unit_test(rewind_forgets_the_tail),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

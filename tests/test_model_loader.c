/* The model loader: hyper-parameters and info of good files, and a clear error (never a crash)
 * for missing or mis-shaped tensors, unsupported types, architectures and RoPE scalings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/model.h"
#include "support/tiny_llm.h"

/* Writes a model with `o`, loads it and returns it (NULL on failure, with err filled). */
static fluid_model *write_and_load(const tiny_llm_options *o, fluid_error *err) {
    char *path = tiny_llm_temp_path();
    assert_non_null(path);
    assert_true(tiny_llm_write(path, o));
    fluid_model *m = fluid_model_load(path, err);
    unlink(path);
    free(path);
    return m;
}

/* Loading must fail with `code` and a message that contains `needle`. */
static void expect_failure(const tiny_llm_options *o, fluid_status code, const char *needle) {
    fluid_error err = {0};
    fluid_model *m = write_and_load(o, &err);
    if (m != NULL) fluid_model_free(m);
    assert_null(m);
    assert_int_equal(err.code, code);
    if (strstr(err.message, needle) == NULL) fail_msg("'%s' lacks '%s'", err.message, needle);
}

static void loads_every_architecture(void **state) {
    (void)state;
    const char *archs[] = {"llama", "qwen2", "qwen3", "phi3"};
    const fl_type types[] = {FL_TYPE_F32, FL_TYPE_F16, FL_TYPE_BF16};
    for (size_t a = 0; a < 4; a++) {
        for (size_t ty = 0; ty < 3; ty++) {
            tiny_llm_options o = {.arch = archs[a], .type = types[ty]};
            fluid_error err = {0};
            fluid_model *m = write_and_load(&o, &err);
            if (m == NULL) fail_msg("%s: %s", archs[a], err.message);
            fluid_model_info info;
            fluid_model_get_info(m, &info);
            assert_string_equal(info.arch, archs[a]);
            assert_string_equal(info.type_name, fl_type_traits_of(types[ty])->name);
            assert_int_equal(info.n_vocab, TINY_LLM_VOCAB);
            assert_int_equal(info.n_embd, TINY_LLM_EMBD);
            assert_int_equal(info.n_layer, TINY_LLM_LAYERS);
            assert_int_equal(info.n_head, TINY_LLM_HEADS);
            assert_int_equal(info.n_head_kv, 2);
            assert_int_equal(info.n_ctx_train, 64);
            assert_true(info.n_params > (uint64_t)TINY_LLM_VOCAB * TINY_LLM_EMBD);
            assert_true(info.file_bytes > 0);
            assert_true(m->hp.rope_neox == (a != 0));
            assert_ptr_equal(m->output, m->tok_embd); /* tied: no output.weight */
            assert_null(fluid_model_vocab(m));        /* no tokenizer in the file */
            fluid_model_free(m);
        }
    }
}

static void rejects_missing_tensors(void **state) {
    (void)state;
    expect_failure(&(tiny_llm_options){.omit_tensor = "blk.1.ffn_down.weight"}, FLUID_ERR_FORMAT,
                   "missing tensor 'blk.1.ffn_down.weight'");
    expect_failure(&(tiny_llm_options){.arch = "qwen2", .omit_tensor = "blk.0.attn_k.bias"},
                   FLUID_ERR_FORMAT, "blk.0.attn_k.bias");
    expect_failure(&(tiny_llm_options){.arch = "qwen3", .omit_tensor = "blk.0.attn_q_norm.weight"},
                   FLUID_ERR_FORMAT, "blk.0.attn_q_norm.weight");
    expect_failure(&(tiny_llm_options){.omit_tensor = "token_embd.weight"}, FLUID_ERR_FORMAT,
                   "token_embd.weight");
}

static void rejects_misshaped_tensors(void **state) {
    (void)state;
    expect_failure(&(tiny_llm_options){.widen_tensor = "blk.0.attn_k.weight"}, FLUID_ERR_FORMAT,
                   "tensor 'blk.0.attn_k.weight' has shape [33, 16, 1, 1], expected [32, 16]");
    expect_failure(&(tiny_llm_options){.arch = "phi3", .widen_tensor = "blk.1.attn_qkv.weight"},
                   FLUID_ERR_FORMAT, "blk.1.attn_qkv.weight");
    expect_failure(&(tiny_llm_options){.widen_tensor = "output_norm.weight"}, FLUID_ERR_FORMAT,
                   "output_norm.weight");
}

static void rejects_unsupported_types(void **state) {
    (void)state;
    expect_failure(&(tiny_llm_options){.retype_tensor = "blk.0.ffn_up.weight"},
                   FLUID_ERR_UNSUPPORTED, "'blk.0.ffn_up.weight' has type i32");
}

static void rejects_bad_metadata(void **state) {
    (void)state;
    expect_failure(&(tiny_llm_options){.arch = "gpt2"}, FLUID_ERR_UNSUPPORTED,
                   "architecture 'gpt2'");
    expect_failure(&(tiny_llm_options){.omit_key = "embedding_length"}, FLUID_ERR_FORMAT,
                   "llama.embedding_length");
    expect_failure(&(tiny_llm_options){.n_head_kv = 3}, FLUID_ERR_FORMAT, "head_count_kv");
    expect_failure(&(tiny_llm_options){.rope_scaling = "yarn"}, FLUID_ERR_UNSUPPORTED, "yarn");
}

static void reads_linear_rope_scaling(void **state) {
    (void)state;
    fluid_error err = {0};
    fluid_model *m = write_and_load(&(tiny_llm_options){.rope_scaling = "linear"}, &err);
    assert_non_null(m);
    assert_true(m->hp.rope_pos_scale == 0.5f);
    fluid_model_free(m);
}

static void reports_unreadable_files(void **state) {
    (void)state;
    fluid_error err = {0};
    assert_null(fluid_model_load("/nonexistent/model.gguf", &err));
    assert_int_equal(err.code, FLUID_ERR_IO);
    char *path = tiny_llm_temp_path(); /* empty: not GGUF */
    assert_null(fluid_model_load(path, &err));
    assert_int_equal(err.code, FLUID_ERR_FORMAT);
    unlink(path);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_every_architecture),  cmocka_unit_test(rejects_missing_tensors),
        cmocka_unit_test(rejects_misshaped_tensors), cmocka_unit_test(rejects_unsupported_types),
        cmocka_unit_test(rejects_bad_metadata),      cmocka_unit_test(reads_linear_rope_scaling),
        cmocka_unit_test(reports_unreadable_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

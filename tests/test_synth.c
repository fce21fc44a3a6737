/* fluid-synth: tiny models of every architecture, with the built-in vocabulary and with one
 * copied from a vocabulary GGUF, reopened with our reader and checked against the contract
 * (keys, tensor names, shapes, types, values); command-line errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "support/files.h"

static char synth_bin[1024];
static char tmp_dir[256];

static int setup(void **state) {
    (void)state;
    const char *build = getenv("FLUID_BUILD_DIR");
    snprintf(synth_bin, sizeof synth_bin, "%s/fluid-synth", build ? build : ".");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/fluid_test_synth_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmp_dir) == NULL) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rmdir(tmp_dir);
    return 0;
}

static void out_path(char *buf, size_t n, const char *tag) {
    snprintf(buf, n, "%s/%s.gguf", tmp_dir, tag);
}

/* Runs fluid-synth with the given arguments (output discarded); returns its exit code. */
static int synth(const char *fmt, ...) {
    char args[2048], cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", synth_bin, args);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static gguf_file *open_ok(const char *path) {
    char err[512];
    gguf_file *f = gguf_open(path, err, sizeof err);
    if (f == NULL) fail_msg("%s", err);
    return f;
}

static uint32_t get_u32(const gguf_file *f, const char *arch, const char *suffix) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    uint32_t v;
    if (!gguf_get_u32(f, key, &v)) fail_msg("missing %s", key);
    return v;
}

static void expect_tensor(const gguf_file *f, const char *name, fl_type type, int64_t ne0,
                          int64_t ne1) {
    const fl_tensor *t = gguf_find_tensor(f, name);
    if (t == NULL) fail_msg("missing tensor %s", name);
    if (t->type != type || t->ne[0] != ne0 || t->ne[1] != ne1 || t->n_dims != (ne1 > 1 ? 2 : 1)) {
        fail_msg("%s: type %d ne %lld x %lld, want type %d ne %lld x %lld", name, t->type,
                 (long long)t->ne[0], (long long)t->ne[1], type, (long long)ne0, (long long)ne1);
    }
}

static float element(const fl_tensor *t, int64_t i) {
    const uint8_t *p = t->data;
    uint16_t h;
    float v;
    switch (t->type) {
    case FL_TYPE_F16:
        memcpy(&h, p + 2 * i, 2);
        return fl_f16_to_f32(h);
    case FL_TYPE_BF16:
        memcpy(&h, p + 2 * i, 2);
        return fl_bf16_to_f32(h);
    default:
        memcpy(&v, p + 4 * i, 4);
        return v;
    }
}

/* Checks that a matrix looks like normal(0, std) samples (all zeros for std 0). */
static void expect_normal(const gguf_file *f, const char *name, double std) {
    const fl_tensor *t = gguf_find_tensor(f, name);
    assert_non_null(t);
    int64_t n = fl_tensor_nelements(t);
    if (std == 0) {
        for (int64_t i = 0; i < n; i++) assert_true(element(t, i) == 0.0f);
        return;
    }
    double sum = 0, sum2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = element(t, i);
        sum += v;
        sum2 += v * v;
    }
    double mean = sum / (double)n, sd = sqrt(sum2 / (double)n - mean * mean);
    if (fabs(mean) > 5 * std / sqrt((double)n) || fabs(sd / std - 1) > 0.1) {
        fail_msg("%s: mean %g std %g, want 0 and %g", name, mean, sd, std);
    }
}

static void expect_ones(const gguf_file *f, const char *name) {
    const fl_tensor *t = gguf_find_tensor(f, name);
    assert_non_null(t);
    for (int64_t i = 0; i < fl_tensor_nelements(t); i++) assert_true(element(t, i) == 1.0f);
}

/* The contract's tensors for a tiny model (n_embd 64, 2 layers, 4 heads, 2 kv heads, n_ff 160). */
static void check_tiny_model(const gguf_file *f, const char *arch, fl_type mtype, int64_t n_vocab,
                             double std) {
    gguf_str s;
    assert_true(gguf_get_str(f, "general.architecture", &s));
    assert_true(s.len == strlen(arch) && memcmp(s.ptr, arch, s.len) == 0);
    bool qwen3 = strcmp(arch, "qwen3") == 0, qwen2 = strcmp(arch, "qwen2") == 0;
    bool phi3 = strcmp(arch, "phi3") == 0;
    int64_t head_dim = qwen3 ? 32 : 16, n_embd = 64, n_ff = 160;
    int64_t q_dim = 4 * head_dim, kv_dim = 2 * head_dim;
    assert_int_equal(get_u32(f, arch, "embedding_length"), n_embd);
    assert_int_equal(get_u32(f, arch, "block_count"), 2);
    assert_int_equal(get_u32(f, arch, "feed_forward_length"), n_ff);
    assert_int_equal(get_u32(f, arch, "attention.head_count"), 4);
    assert_int_equal(get_u32(f, arch, "attention.head_count_kv"), 2);
    assert_int_equal(get_u32(f, arch, "context_length"), 512);
    assert_int_equal(get_u32(f, arch, "rope.dimension_count"), head_dim);
    assert_int_equal(get_u32(f, arch, "vocab_size"), n_vocab);
    if (qwen3) assert_int_equal(get_u32(f, arch, "attention.key_length"), 32);
    char key[128];
    float v;
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch);
    assert_true(gguf_get_f32(f, key, &v) && v == 1e-5f);
    snprintf(key, sizeof key, "%s.rope.freq_base", arch);
    assert_true(gguf_get_f32(f, key, &v) && v == 10000.0f);

    expect_tensor(f, "token_embd.weight", mtype, n_embd, n_vocab);
    expect_tensor(f, "output.weight", mtype, n_embd, n_vocab);
    expect_tensor(f, "output_norm.weight", FL_TYPE_F32, n_embd, 1);
    expect_ones(f, "output_norm.weight");
    expect_normal(f, "token_embd.weight", std);
    int64_t expected = 3;
    for (int il = 0; il < 2; il++) {
        char name[96];
#define T(suffix) (snprintf(name, sizeof name, "blk.%d.%s", il, suffix), name)
        expect_tensor(f, T("attn_norm.weight"), FL_TYPE_F32, n_embd, 1);
        expect_ones(f, name);
        expect_tensor(f, T("ffn_norm.weight"), FL_TYPE_F32, n_embd, 1);
        expect_ones(f, name);
        expect_tensor(f, T("attn_output.weight"), mtype, q_dim, n_embd);
        expect_tensor(f, T("ffn_down.weight"), mtype, n_ff, n_embd);
        expect_normal(f, name, std);
        expected += 4;
        if (phi3) {
            expect_tensor(f, T("attn_qkv.weight"), mtype, n_embd, q_dim + 2 * kv_dim);
            expect_tensor(f, T("ffn_up.weight"), mtype, n_embd, 2 * n_ff);
            expected += 2;
        } else {
            expect_tensor(f, T("attn_q.weight"), mtype, n_embd, q_dim);
            expect_normal(f, name, std);
            expect_tensor(f, T("attn_k.weight"), mtype, n_embd, kv_dim);
            expect_tensor(f, T("attn_v.weight"), mtype, n_embd, kv_dim);
            expect_tensor(f, T("ffn_gate.weight"), mtype, n_embd, n_ff);
            expect_tensor(f, T("ffn_up.weight"), mtype, n_embd, n_ff);
            expected += 5;
        }
        if (qwen2) {
            expect_tensor(f, T("attn_q.bias"), FL_TYPE_F32, q_dim, 1);
            expect_tensor(f, T("attn_k.bias"), FL_TYPE_F32, kv_dim, 1);
            expect_tensor(f, T("attn_v.bias"), FL_TYPE_F32, kv_dim, 1);
            expected += 3;
        }
        if (qwen3) {
            expect_tensor(f, T("attn_q_norm.weight"), FL_TYPE_F32, head_dim, 1);
            expect_ones(f, name);
            expect_tensor(f, T("attn_k_norm.weight"), FL_TYPE_F32, head_dim, 1);
            expected += 2;
        }
#undef T
    }
    assert_int_equal(gguf_n_tensors(f), expected);
}

static bool arr_has(const gguf_file *f, const char *key, const char *s, size_t len) {
    uint64_t n;
    assert_true(gguf_get_arr(f, key, NULL, &n, NULL));
    for (uint64_t i = 0; i < n; i++) {
        gguf_str t;
        assert_true(gguf_get_arr_str(f, key, i, &t));
        if (t.len == len && memcmp(t.ptr, s, len) == 0) return true;
    }
    return false;
}

/* The built-in vocabulary: byte tokens, merges whose parts and results are tokens, ChatML
 * control tokens. */
static int64_t check_builtin_vocab(const gguf_file *f) {
    gguf_str s;
    assert_true(gguf_get_str(f, "tokenizer.ggml.model", &s));
    assert_true(s.len == 4 && memcmp(s.ptr, "gpt2", 4) == 0);
    gguf_type et;
    uint64_t n, n_types, n_merges;
    assert_true(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, NULL));
    assert_int_equal(et, GGUF_TYPE_STRING);
    assert_true(gguf_get_arr(f, "tokenizer.ggml.token_type", &et, &n_types, NULL));
    assert_int_equal(et, GGUF_TYPE_INT32);
    assert_int_equal(n_types, n);
    assert_true(gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n_merges, NULL));
    assert_int_equal(et, GGUF_TYPE_STRING);
    assert_true(n_merges >= 150);
    assert_int_equal(n, 256 + n_merges + 3);
    assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 'A', &s));
    assert_true(s.len == 1 && s.ptr[0] == 'A');
    assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", ' ', &s));
    assert_true(s.len == 2 && memcmp(s.ptr, "\xc4\xa0", 2) == 0); /* U+0120 */
    for (uint64_t i = 0; i < n_merges; i += 7) {
        assert_true(gguf_get_arr_str(f, "tokenizer.ggml.merges", i, &s));
        const char *sp = memchr(s.ptr, ' ', s.len);
        assert_non_null(sp);
        size_t left = (size_t)(sp - s.ptr);
        char joined[256];
        memcpy(joined, s.ptr, left);
        memcpy(joined + left, sp + 1, s.len - left - 1);
        assert_true(arr_has(f, "tokenizer.ggml.tokens", s.ptr, left));
        assert_true(arr_has(f, "tokenizer.ggml.tokens", sp + 1, s.len - left - 1));
        assert_true(arr_has(f, "tokenizer.ggml.tokens", joined, s.len - 1));
    }
    static const char *const specials[3] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    for (int i = 0; i < 3; i++) {
        assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", n - 3 + (uint64_t)i, &s));
        assert_true(s.len == strlen(specials[i]) && memcmp(s.ptr, specials[i], s.len) == 0);
        double type;
        assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", n - 3 + (uint64_t)i, &type));
        assert_true(type == 3.0);
    }
    double type;
    assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", 0, &type));
    assert_true(type == 1.0);
    uint32_t id;
    assert_true(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &id));
    assert_int_equal(id, n - 3);
    assert_true(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &id));
    assert_int_equal(id, n - 1);
    bool add_bos = true;
    assert_true(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &add_bos));
    assert_false(add_bos);
    assert_true(gguf_get_str(f, "tokenizer.chat_template", &s));
    char tmpl[1024];
    assert_true(s.len < sizeof tmpl);
    memcpy(tmpl, s.ptr, s.len);
    tmpl[s.len] = '\0';
    assert_non_null(strstr(tmpl, "<|im_start|>"));
    assert_non_null(strstr(tmpl, "add_generation_prompt"));
    return (int64_t)n;
}

static void tiny_models_of_every_arch(void **state) {
    (void)state;
    static const char *const archs[4] = {"llama", "qwen2", "qwen3", "phi3"};
    static const struct {
        const char *name;
        fl_type type;
    } types[3] = {{"f32", FL_TYPE_F32}, {"f16", FL_TYPE_F16}, {"bf16", FL_TYPE_BF16}};
    for (int a = 0; a < 4; a++) {
        int t = a % 3; /* every type, on some architecture */
        char path[512];
        out_path(path, sizeof path, archs[a]);
        double std = 0.02 + 0.01 * t;
        assert_int_equal(synth("--arch %s --preset tiny --type %s --seed %d --std %g -o '%s'",
                               archs[a], types[t].name, 10 + a, std, path),
                         0);
        gguf_file *f = open_ok(path);
        assert_int_equal(gguf_version(f), 3);
        int64_t n_vocab = check_builtin_vocab(f);
        check_tiny_model(f, archs[a], types[t].type, n_vocab, std);
        uint32_t ft;
        assert_true(gguf_get_u32(f, "general.file_type", &ft));
        assert_int_equal(ft, t == 0 ? 0 : t == 1 ? 1 : 32);
        gguf_close(f);
        unlink(path);
    }
}

static void same_seed_same_bytes(void **state) {
    (void)state;
    char a[512], b[512], c[512];
    out_path(a, sizeof a, "seed_a");
    out_path(b, sizeof b, "seed_b");
    out_path(c, sizeof c, "seed_c");
    assert_int_equal(synth("--arch llama --preset tiny --seed 5 -o '%s'", a), 0);
    assert_int_equal(synth("--arch llama --preset tiny --seed 5 -o '%s'", b), 0);
    assert_int_equal(synth("--arch llama --preset tiny --seed 6 -o '%s'", c), 0);
    size_t na, nb, nc;
    char *pa = test_read_file(a, &na), *pb = test_read_file(b, &nb), *pc = test_read_file(c, &nc);
    assert_true(pa != NULL && pb != NULL && pc != NULL);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    assert_int_equal(na, nc);
    assert_true(memcmp(pa, pc, na) != 0);
    free(pa);
    free(pb);
    free(pc);
    unlink(a);
    unlink(b);
    unlink(c);
}

static void vocab_is_copied_from_a_file(void **state) {
    (void)state;
    const char *dir = getenv("FLUID_TESTDATA");
    char vocab[1024];
    snprintf(vocab, sizeof vocab, "%s/ggml-vocab-qwen2.gguf", dir ? dir : "");
    if (dir == NULL || access(vocab, R_OK) != 0) {
        print_message("FLUID_TESTDATA missing: skipping --vocab\n");
        skip();
    }
    char path[512];
    out_path(path, sizeof path, "vocab");
    /* zero weights (--std 0): the random values are checked elsewhere, and 19M of them are
     * slow in the sanitizer build */
    assert_int_equal(
        synth("--arch qwen2 --preset tiny --type bf16 --std 0 --vocab '%s' -o '%s'", vocab, path),
        0);
    gguf_file *f = open_ok(path);
    gguf_file *v = open_ok(vocab);
    check_tiny_model(f, "qwen2", FL_TYPE_BF16, 151936, 0);
    int64_t copied = 0;
    for (int64_t i = 0; i < gguf_n_kv(v); i++) {
        gguf_str k = gguf_kv_key(v, i);
        if (k.len < 10 || memcmp(k.ptr, "tokenizer.", 10) != 0) continue;
        char key[256];
        assert_true(k.len < sizeof key);
        memcpy(key, k.ptr, k.len);
        key[k.len] = '\0';
        int64_t j = gguf_find_key(f, key);
        if (j < 0) fail_msg("key %s not copied", key);
        assert_int_equal(gguf_kv_type(f, j), gguf_kv_type(v, i));
        gguf_type et1, et2;
        uint64_t n1, n2;
        if (gguf_get_arr(v, key, &et1, &n1, NULL)) {
            assert_true(gguf_get_arr(f, key, &et2, &n2, NULL));
            assert_int_equal(et1, et2);
            assert_int_equal(n1, n2);
        }
        copied++;
    }
    assert_true(copied >= 5);
    gguf_str s1, s2;
    assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 151643, &s1));
    assert_true(gguf_get_arr_str(v, "tokenizer.ggml.tokens", 151643, &s2));
    assert_true(s1.len == s2.len && memcmp(s1.ptr, s2.ptr, s1.len) == 0);
    assert_int_equal(gguf_find_key(f, "qwen2.block_count") >= 0, 1);
    assert_int_equal(get_u32(f, "qwen2", "block_count"), 2); /* not the vocab file's 32 */
    gguf_close(v);
    gguf_close(f);
    unlink(path);
}

/* The real presets' widths, with one layer so the files stay small. */
static void bigger_presets_have_their_shapes(void **state) {
    (void)state;
    char path[512];
    out_path(path, sizeof path, "qwen3");
    assert_int_equal(
        synth("--arch qwen3 --preset qwen3-0.6b --layers 1 --std 0 --type bf16 -o '%s'", path), 0);
    gguf_file *f = open_ok(path);
    assert_int_equal(get_u32(f, "qwen3", "attention.key_length"), 128);
    assert_int_equal(get_u32(f, "qwen3", "attention.value_length"), 128);
    assert_int_equal(get_u32(f, "qwen3", "rope.dimension_count"), 128);
    assert_int_equal(get_u32(f, "qwen3", "block_count"), 1);
    assert_int_equal(get_u32(f, "qwen3", "context_length"), 40960);
    float v;
    assert_true(gguf_get_f32(f, "qwen3.rope.freq_base", &v) && v == 1e6f);
    expect_tensor(f, "blk.0.attn_q.weight", FL_TYPE_BF16, 1024, 16 * 128);
    expect_tensor(f, "blk.0.attn_k.weight", FL_TYPE_BF16, 1024, 8 * 128);
    expect_tensor(f, "blk.0.attn_output.weight", FL_TYPE_BF16, 16 * 128, 1024);
    expect_tensor(f, "blk.0.attn_q_norm.weight", FL_TYPE_F32, 128, 1);
    expect_tensor(f, "blk.0.ffn_down.weight", FL_TYPE_BF16, 3072, 1024);
    assert_null(gguf_find_tensor(f, "output.weight")); /* tied */
    assert_null(gguf_find_tensor(f, "blk.1.attn_q.weight"));
    expect_normal(f, "blk.0.ffn_down.weight", 0);
    gguf_close(f);
    unlink(path);

    /* llama-3.2-1b carries Llama 3 rope factors; zeros (--std 0) keep it quick, but it is still
     * a 120 MB file: not in the (slower) sanitizer build */
    const char *sanitize = getenv("FLUID_SANITIZE");
    if (sanitize != NULL && strcmp(sanitize, "1") == 0) return;
    out_path(path, sizeof path, "llama3");
    assert_int_equal(
        synth("--arch llama --preset llama-3.2-1b --layers 1 --std 0 --type f16 -o '%s'", path), 0);
    f = open_ok(path);
    const fl_tensor *t = gguf_find_tensor(f, "rope_freqs.weight");
    assert_non_null(t);
    assert_int_equal(t->type, FL_TYPE_F32);
    assert_int_equal(t->ne[0], 32);
    assert_true(element(t, 0) == 1.0f);   /* highest frequency: unscaled */
    assert_true(element(t, 31) == 32.0f); /* lowest: the full factor */
    for (int i = 1; i < 32; i++) assert_true(element(t, i) >= element(t, i - 1));
    assert_true(element(t, 16) > 1.0f && element(t, 16) < 32.0f); /* the blend in between */
    assert_int_equal(get_u32(f, "llama", "context_length"), 131072);
    assert_int_equal(get_u32(f, "llama", "attention.head_count_kv"), 8);
    expect_tensor(f, "blk.0.ffn_gate.weight", FL_TYPE_F16, 2048, 8192);
    assert_null(gguf_find_tensor(f, "output.weight"));
    gguf_close(f);
    unlink(path);
}

static void command_line_errors(void **state) {
    (void)state;
    char path[512];
    out_path(path, sizeof path, "errors");
    assert_int_equal(synth("--help"), 0);
    assert_int_equal(synth("--arch llama --preset tiny --bogus 1 -o '%s'", path), 2);
    assert_int_equal(synth("--arch llama --preset tiny --type q9 -o '%s'", path), 2);
    assert_int_equal(synth("--arch gpt5 --preset tiny -o '%s'", path), 2);
    assert_int_equal(synth("--arch llama --preset tiny"), 2);
    assert_int_equal(synth("--arch llama --preset tiny --seed -3 -o '%s'", path), 2);
    assert_int_equal(synth("--arch llama --preset tiny --vocab /nonexistent.gguf -o '%s'", path),
                     1);
    assert_int_equal(synth("--arch llama --preset tiny -o /nonexistent-dir/x.gguf"), 1);
    assert_int_equal(access(path, F_OK), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_models_of_every_arch),
        cmocka_unit_test(same_seed_same_bytes),
        cmocka_unit_test(vocab_is_copied_from_a_file),
        cmocka_unit_test(bigger_presets_have_their_shapes),
        cmocka_unit_test(command_line_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

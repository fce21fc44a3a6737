/* GGUF files: the reader over bytes in memory and every accessor on what it accepts, the
 * tokenizer reader (tokenizer.ggml.*) on the same file, and the language-model loader on it
 * (through a memfd, as it only takes a path), which, when the model loads, also decodes two
 * tokens: a file the loader accepts must be safe to run. */
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/kernels.h"
#include "engine/vocab.h"
#include "harness.h"

/* A key as a C string; false when it does not fit or holds a NUL (no look-up can name it). */
static bool key_text(gguf_str key, char *out, size_t size) {
    if (key.len >= size || memchr(key.ptr, '\0', key.len) != NULL) return false;
    memcpy(out, key.ptr, key.len);
    out[key.len] = '\0';
    return true;
}

/* Reads a string byte by byte: ASan checks that it lies inside the input. */
static unsigned touch(const void *p, size_t n) {
    const volatile unsigned char *b = p;
    return n > 0 ? b[0] + b[n - 1] : 0;
}

static void read_array(const gguf_file *f, const char *key) {
    gguf_type type;
    uint64_t count;
    const void *data;
    if (!gguf_get_arr(f, key, &type, &count, &data)) return;
    uint64_t picks[3] = {0, count / 2, count - 1};
    for (int i = 0; i < 3 && count > 0; i++) {
        gguf_str s;
        double d;
        if (gguf_get_arr_str(f, key, picks[i], &s)) touch(s.ptr, s.len);
        gguf_get_arr_num(f, key, picks[i], &d);
    }
    gguf_str s;
    double d;
    fz_check(!gguf_get_arr_str(f, key, count, &s) && !gguf_get_arr_num(f, key, count, &d),
             "no array element past the end");
}

static void read_metadata(const gguf_file *f) {
    int64_t n = gguf_n_kv(f);
    for (int64_t i = 0; i < n; i++) {
        char key[256];
        gguf_str k = gguf_kv_key(f, i);
        touch(k.ptr, k.len);
        if (!key_text(k, key, sizeof key)) continue;
        uint32_t u32;
        int64_t i64;
        float f32;
        bool b;
        gguf_str s;
        gguf_get_u32(f, key, &u32);
        gguf_get_i64(f, key, &i64);
        gguf_get_f32(f, key, &f32);
        gguf_get_bool(f, key, &b);
        if (gguf_get_str(f, key, &s)) touch(s.ptr, s.len);
        if (gguf_kv_type(f, i) == GGUF_TYPE_ARRAY) read_array(f, key);
    }
}

static void read_tensors(const gguf_file *f, const uint8_t *data, size_t size) {
    int64_t n = gguf_n_tensors(f);
    for (int64_t i = 0; i < n; i++) {
        const fl_tensor *t = gguf_tensor(f, i);
        const uint8_t *at = t->data;
        fz_check(at >= data && t->nbytes <= size && (size_t)(at - data) <= size - t->nbytes,
                 "tensor data lies inside the file");
        fz_check(gguf_find_tensor(f, t->name) != NULL, "a tensor is found by its name");
        touch(t->data, t->nbytes);
        /* one row as floats, for the types the kernels read (small rows only: speed) */
        if (fl_kernels_support(t->type) && t->ne[0] <= 4096) {
            float row[4096];
            fl_dequantize_row(t, t->ne[1] - 1, row);
        }
    }
}

static void read_vocab(const gguf_file *f) {
    fluid_vocab *v = fl_vocab_from_gguf(f, NULL);
    if (v == NULL) return;
    static const char text[] = "Hello, world! <|im_start|> 123 \xc3\xa9t\xc3\xa9";
    int32_t *tokens = NULL;
    size_t n = 0;
    if (fluid_tokenize(v, text, sizeof text - 1, true, true, &tokens, &n, NULL) == FLUID_OK) {
        fluid_detok *d = fluid_detok_create(v, true);
        for (size_t i = 0; d != NULL && i < n; i++) {
            size_t len;
            fluid_detok_push(d, tokens[i], &len);
        }
        fluid_detok_free(d);
    }
    free(tokens);
    fluid_vocab_free(v);
}

static fluid_pool *pool(void) {
    static fluid_pool *p;
    if (p == NULL) p = fluid_pool_create(1);
    fz_check(p != NULL, "a compute pool");
    return p;
}

static void load_model(const uint8_t *data, size_t size) {
    fz_file file;
    const char *path = fz_file_open(&file, data, size);
    if (path == NULL) return;
    fluid_model *m = fluid_model_load(path, NULL);
    if (m != NULL) {
        fluid_model_info info;
        fluid_model_get_info(m, &info);
        fluid_session *s = fluid_session_create(m, 8, NULL);
        const int32_t tokens[2] = {0, info.n_vocab - 1};
        if (s != NULL && fluid_session_decode(s, tokens, 2, pool(), NULL) == FLUID_OK)
            fz_check(fluid_session_logits(s, -1) != NULL, "logits after a decode");
        fluid_session_free(s);
        fluid_model_free(m);
    }
    fz_file_close(&file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    gguf_file *f = gguf_open_memory(data, size, err, sizeof err);
    if (f == NULL) return 0;
    read_metadata(f);
    read_tensors(f, data, size);
    read_vocab(f);
    bool is_model = gguf_find_key(f, "general.architecture") >= 0;
    gguf_close(f);
    if (is_model) load_model(data, size);
    return 0;
}

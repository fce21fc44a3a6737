#include "harness.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "fluid-synth/vocab.h"
#include "runtime/runtime.h"

void fz_check(bool cond, const char *what) {
    if (cond) return;
    fprintf(stderr, "fuzz: property violated: %s\n", what);
    abort();
}

static void *must(void *p) {
    fz_check(p != NULL, "the harness ran out of memory");
    return p;
}

bool fz_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n = c < 0x80                 ? 1
                   : c >= 0xc2 && c <= 0xdf ? 2
                   : c >= 0xe0 && c <= 0xef ? 3
                   : c >= 0xf0 && c <= 0xf4 ? 4
                                            : 0;
        if (n == 0 || n > len - i) return false;
        unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        if (n > 1 && (p[i + 1] < lo || p[i + 1] > hi)) return false;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xc0) != 0x80) return false;
        i += n;
    }
    return true;
}

char *fz_copy(const void *data, size_t size) {
    char *s = must(malloc(size + 1));
    if (size > 0) memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

uint8_t fz_byte(fz_reader *r) {
    if (r->left == 0) return 0;
    r->left--;
    return *r->p++;
}

char *fz_field(fz_reader *r, size_t *len) {
    const uint8_t *end = memchr(r->p, FZ_SEP, r->left);
    size_t n = end ? (size_t)(end - r->p) : r->left;
    char *s = fz_copy(r->p, n);
    size_t used = end ? n + 1 : n;
    r->p += used;
    r->left -= used;
    if (len) *len = n;
    return s;
}

/* ---- files in memory ---- */

const char *fz_file_open(fz_file *f, const void *data, size_t size) {
    f->fd = memfd_create("fluid-fuzz", MFD_CLOEXEC);
    if (f->fd < 0) return NULL;
    const char *at = data;
    while (size > 0) {
        ssize_t n = write(f->fd, at, size);
        if (n <= 0) {
            fz_file_close(f);
            return NULL;
        }
        at += n;
        size -= (size_t)n;
    }
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return f->path;
}

void fz_file_close(fz_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

/* ---- vocabularies ---- */

/* Families with distinct pre-tokenizers or models (BPE, SentencePiece, WordPiece). */
static const char *const TESTDATA_VOCABS[] = {
    "gpt-2",    "qwen2",  "llama-bpe",    "llama-spm",      "phi-3",
    "bert-bge", "falcon", "deepseek-llm", "deepseek-coder", "starcoder",
    "refact",   "mpt",    "gpt-neox",     "qwen35",         "gemma-4",
};
enum {
    N_BUILTIN = 2,
    N_TESTDATA = sizeof TESTDATA_VOCABS / sizeof TESTDATA_VOCABS[0],
    N_VOCABS = N_BUILTIN + N_TESTDATA,
};

static bool write_builtin_bpe(gguf_writer *w) {
    char err[256];
    return synth_vocab_builtin(w, err, sizeof err) > 0;
}

/* <unk> <s> </s>, the 256 byte-fallback tokens, a few pieces with scores, a Mistral template. */
static bool write_small_spm(gguf_writer *w) {
    enum { N_PIECES = 8, N = 3 + 256 + N_PIECES };
    static const char *const pieces[N_PIECES] = {"\xe2\x96\x81",
                                                 "\xe2\x96\x81h",
                                                 "\xe2\x96\x81he",
                                                 "\xe2\x96\x81hello",
                                                 "h",
                                                 "e",
                                                 "l",
                                                 "lo"};
    const char *tokens[N] = {"<unk>", "<s>", "</s>"};
    int32_t types[N] = {2, 3, 3};
    float scores[N] = {0};
    char bytes[256][8];
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        tokens[3 + i] = bytes[i];
        types[3 + i] = 6;
    }
    for (int i = 0; i < N_PIECES; i++) {
        tokens[259 + i] = pieces[i];
        types[259 + i] = 1;
        scores[259 + i] = -(float)(i + 1);
    }
    return gguf_writer_set_str(w, "tokenizer.ggml.model", "llama") &&
           gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, N) &&
           gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, N) &&
           gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores, N) &&
           gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1) &&
           gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2) &&
           gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true) &&
           gguf_writer_set_str(w, "tokenizer.chat_template",
                               "{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} "
                               "[/INST]{% endfor %}");
}

bool fz_vocab_write(int index, const char *path) {
    if (index < 0 || index >= N_BUILTIN) return false;
    gguf_writer *w = must(gguf_writer_create());
    char msg[256];
    bool ok = (index == 0 ? write_builtin_bpe(w) : write_small_spm(w)) &&
              gguf_writer_write(w, path, msg, sizeof msg);
    gguf_writer_free(w);
    return ok;
}

/* Writes a built-in vocabulary to a temporary file and loads it. */
static fluid_vocab *load_builtin(int index, fluid_error *err) {
    char path[] = "/tmp/fluid-fuzz-vocab-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    close(fd);
    fluid_vocab *v = fz_vocab_write(index, path) ? fluid_vocab_load(path, err) : NULL;
    remove(path);
    return v;
}

int fz_vocab_count(void) {
    return getenv("FLUID_TESTDATA") ? N_VOCABS : N_BUILTIN;
}

static fluid_vocab *load_vocab(int index, fluid_error *err) {
    if (index < N_BUILTIN) return load_builtin(index, err);
    char path[4096];
    snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", getenv("FLUID_TESTDATA"),
             TESTDATA_VOCABS[index - N_BUILTIN]);
    return fluid_vocab_load(path, err);
}

const fluid_vocab *fz_vocab(int index) {
    static fluid_vocab *vocabs[N_VOCABS];
    static bool tried[N_VOCABS];
    if (index < 0 || index >= fz_vocab_count()) return NULL;
    if (!tried[index]) {
        tried[index] = true;
        fluid_error err = {0};
        vocabs[index] = load_vocab(index, &err);
        if (vocabs[index] == NULL)
            fprintf(stderr, "fuzz: vocabulary %d not loaded: %s\n", index, err.message);
    }
    return vocabs[index];
}

/* ---- the API ---- */

static api_ctx api_context;
static char model_dir[] = "/tmp/fluid-fuzz-models-XXXXXX";

static void remove_model_dir(void) {
    rt_destroy(api_context.rt);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", model_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", model_dir);
}

const api_ctx *fz_api_ctx(void) {
    api_ctx *ctx = &api_context;
    if (ctx->rt != NULL) return ctx;
    fz_check(mkdtemp(model_dir) != NULL, "a temporary model folder can be made");
    rt_config rc;
    rt_config_defaults(&rc);
    rc.model_path = model_dir;
    rc.llm_model = "";
    rc.whisper_model = "";
    rc.warm_up = false;
    rc.auto_download = false;
    rc.progress_bar = false;
    rc.n_threads = 1;
    rc.hf_endpoint = "http://127.0.0.1:9"; /* never reached: downloads are off */
    rt_error err;
    /* Small limits, so that inputs reach both sides of each. */
    *ctx = (api_ctx){
        .rt = rt_create(&rc, &err),
        .version = "fuzz",
        .keepalive_ms = 100,
        .limits = {
            .max_tokens = 64, .max_messages = 8, .max_input_bytes = 4096, .max_audio_s = 30}};
    fz_check(ctx->rt != NULL, "the model manager starts");
    atexit(remove_model_dir);
    return ctx;
}

api_request fz_post(const char *path, const char *content_type, const char *body, size_t len) {
    return (api_request){.method = "POST",
                         .path = path,
                         .route_param = "",
                         .content_type = content_type,
                         .body = body,
                         .body_len = len,
                         .request_id = "req_fuzz"};
}

void fz_check_response(const api_response *res, bool json_body) {
    fz_check(res->status >= 200 && res->status < 600, "a response has an HTTP status");
    if (!json_body || res->stream != NULL) return;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL);
    fz_check(doc != NULL, "a response body is JSON");
    json_decref(doc);
}

void fz_api_call(api_handler handler, const api_request *req, bool json_body) {
    api_response res = {0};
    handler(fz_api_ctx(), req, &res);
    fz_check_response(&res, json_body);
    api_response_free(&res);
}

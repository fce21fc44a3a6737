/* Loading the ggml Whisper file: magic, hparams, mel filters, vocabulary, then tensors until
 * the end of the file. Every length and count is checked against the bytes left. */
#include "engine/whisper_internal.h"
#include "util/error.h"
#include "util/mapguard.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define WH_MAGIC 0x67676d6cu
#define WH_MAX_NAME 256

/* ---- special tokens ---------------------------------------------------------------------- */

bool wh_specials_from_vocab(int32_t n_vocab, wh_specials *sp) {
    /* 51864: English-only; 51865: multilingual (99 languages); 51866: large-v3 (100). */
    if (n_vocab < 51864 || n_vocab > 51866) return false;
    memset(sp, 0, sizeof(*sp));
    sp->multilingual = n_vocab >= 51865;
    sp->n_lang = n_vocab == 51866 ? 100 : 99;
    sp->eot = sp->multilingual ? 50257 : 50256;
    sp->sot = sp->eot + 1;
    sp->lang_begin = sp->sot + 1;
    sp->translate = sp->lang_begin + sp->n_lang;
    sp->transcribe = sp->translate + 1;
    sp->solm = sp->translate + 2;
    sp->prev = sp->translate + 3;
    sp->nospeech = sp->translate + 4;
    sp->notimestamps = sp->translate + 5;
    sp->beg = sp->translate + 6;
    return sp->beg + WH_N_TIMESTAMPS == n_vocab;
}

/* ---- languages (OpenAI Whisper's order: token <|xx|> = lang_begin + index) ----------------- */

static const char *const LANG_CODES[] = {
    "en", "zh", "de", "es",  "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv",
    "it", "id", "hi", "fi",  "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no",
    "th", "ur", "hr", "bg",  "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr",
    "az", "sl", "kn", "et",  "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si",  "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu",
    "am", "yi", "lo", "uz",  "fo", "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl",
    "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};

static const char *const LANG_NAMES[] = {
    "english",  "chinese",    "german",         "spanish",     "russian",    "korean",
    "french",   "japanese",   "portuguese",     "turkish",     "polish",     "catalan",
    "dutch",    "arabic",     "swedish",        "italian",     "indonesian", "hindi",
    "finnish",  "vietnamese", "hebrew",         "ukrainian",   "greek",      "malay",
    "czech",    "romanian",   "danish",         "hungarian",   "tamil",      "norwegian",
    "thai",     "urdu",       "croatian",       "bulgarian",   "lithuanian", "latin",
    "maori",    "malayalam",  "welsh",          "slovak",      "telugu",     "persian",
    "latvian",  "bengali",    "serbian",        "azerbaijani", "slovenian",  "kannada",
    "estonian", "macedonian", "breton",         "basque",      "icelandic",  "armenian",
    "nepali",   "mongolian",  "bosnian",        "kazakh",      "albanian",   "swahili",
    "galician", "marathi",    "punjabi",        "sinhala",     "khmer",      "shona",
    "yoruba",   "somali",     "afrikaans",      "occitan",     "georgian",   "belarusian",
    "tajik",    "sindhi",     "gujarati",       "amharic",     "yiddish",    "lao",
    "uzbek",    "faroese",    "haitian creole", "pashto",      "turkmen",    "nynorsk",
    "maltese",  "sanskrit",   "luxembourgish",  "myanmar",     "tibetan",    "tagalog",
    "malagasy", "assamese",   "tatar",          "hawaiian",    "lingala",    "hausa",
    "bashkir",  "javanese",   "sundanese",      "cantonese"};

#define N_LANGS ((int32_t)(sizeof(LANG_CODES) / sizeof(LANG_CODES[0])))
_Static_assert(sizeof(LANG_CODES) / sizeof(LANG_CODES[0]) ==
                   sizeof(LANG_NAMES) / sizeof(LANG_NAMES[0]),
               "language tables differ in length");

int32_t fluid_whisper_lang_id(const char *code_or_name) {
    if (code_or_name == NULL) return -1;
    for (int32_t i = 0; i < N_LANGS; i++) {
        if (strcasecmp(code_or_name, LANG_CODES[i]) == 0 ||
            strcasecmp(code_or_name, LANG_NAMES[i]) == 0)
            return i;
    }
    return -1;
}

const char *fluid_whisper_lang_code(int32_t id) {
    return id >= 0 && id < N_LANGS ? LANG_CODES[id] : NULL;
}

const char *fluid_whisper_lang_name(int32_t id) {
    return id >= 0 && id < N_LANGS ? LANG_NAMES[id] : NULL;
}

/* ---- a bounds-checked reader over the mapped file ---------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t left;
    size_t size;
    fluid_error *err;
} reader;

static size_t reader_offset(const reader *r) {
    return r->size - r->left;
}

static bool read_bytes(reader *r, void *dst, size_t n, const char *what) {
    if (n > r->left) {
        fl_set_error(r->err, FLUID_ERR_FORMAT,
                     "whisper model truncated: %s needs %zu bytes at offset %zu, %zu left", what, n,
                     reader_offset(r), r->left);
        return false;
    }
    if (dst) memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

static bool read_i32(reader *r, int32_t *v, const char *what) {
    return read_bytes(r, v, sizeof(*v), what);
}

/* ---- the model --------------------------------------------------------------------------- */

static const char *const HPARAM_NAMES[] = {
    "n_vocab",      "n_audio_ctx", "n_audio_state", "n_audio_head", "n_audio_layer", "n_text_ctx",
    "n_text_state", "n_text_head", "n_text_layer",  "n_mels",       "ftype"};

static bool check_hparams(const wh_hparams *hp, fluid_error *err) {
    const int32_t *v = &hp->n_vocab;
    for (int i = 0; i < 10; i++) {
        if (v[i] <= 0 || v[i] > 1 << 20) {
            fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: bad %s = %d", HPARAM_NAMES[i],
                         (int)v[i]);
            return false;
        }
    }
    if (hp->n_audio_state % hp->n_audio_head || hp->n_text_state % hp->n_text_head) {
        fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: state not divisible by heads");
        return false;
    }
    if (hp->n_audio_ctx * 2 != WH_CHUNK_FRAMES) {
        fl_set_error(err, FLUID_ERR_UNSUPPORTED,
                     "whisper model: n_audio_ctx %d (only 30 s windows of 1500 are supported)",
                     (int)hp->n_audio_ctx);
        return false;
    }
    return true;
}

static bool read_mel_filters(fluid_whisper *m, reader *r, fluid_error *err) {
    int32_t n_mel, n_fft;
    if (!read_i32(r, &n_mel, "mel filter count") || !read_i32(r, &n_fft, "mel filter width"))
        return false;
    if (n_mel != m->hp.n_mels || n_fft <= 0 || n_fft != WH_N_FFT / 2 + 1) {
        fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: mel filters %d x %d, expected %d x %d",
                     (int)n_mel, (int)n_fft, (int)m->hp.n_mels, WH_N_FFT / 2 + 1);
        return false;
    }
    size_t n = (size_t)n_mel * (size_t)n_fft;
    const uint8_t *at = r->p;
    if (!read_bytes(r, NULL, n * sizeof(float), "mel filters")) return false;
    m->n_fft_bins = n_fft;
    m->mel_filters_owned = malloc(n * sizeof(float));
    if (!m->mel_filters_owned) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
        return false;
    }
    memcpy(m->mel_filters_owned, at, n * sizeof(float));
    m->mel_filters = m->mel_filters_owned;
    return true;
}

static bool set_token(fluid_whisper *m, int32_t id, const char *text, size_t len) {
    m->token_text[id] = malloc(len + 1);
    if (!m->token_text[id]) return false;
    memcpy(m->token_text[id], text, len);
    m->token_text[id][len] = '\0';
    m->token_len[id] = (uint32_t)len;
    return true;
}

/* The text of a token the file does not list: its special name. */
static void special_name(const fluid_whisper *m, int32_t id, char *buf, size_t size) {
    const wh_specials *sp = &m->sp;
    if (id >= sp->beg) {
        snprintf(buf, size, "<|%.2f|>", (id - sp->beg) * WH_TIME_PRECISION);
    } else if (id >= sp->lang_begin && id < sp->lang_begin + sp->n_lang) {
        const char *code = fluid_whisper_lang_code(id - sp->lang_begin);
        snprintf(buf, size, "<|%s|>", code ? code : "unknown");
    } else {
        static const char *const names[] = {"<|translate|>", "<|transcribe|>",
                                            "<|startoflm|>", "<|startofprev|>",
                                            "<|nospeech|>",  "<|notimestamps|>"};
        const char *name = NULL;
        if (id == sp->eot)
            name = "<|endoftext|>";
        else if (id == sp->sot)
            name = "<|startoftranscript|>";
        else if (id >= sp->translate && id <= sp->notimestamps)
            name = names[id - sp->translate];
        snprintf(buf, size, "%s", name ? name : "<|unused|>");
    }
}

static bool read_vocab(fluid_whisper *m, reader *r, fluid_error *err) {
    int32_t count;
    if (!read_i32(r, &count, "vocabulary size")) return false;
    if (count < 0 || count > m->hp.n_vocab) {
        fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: %d vocabulary entries for n_vocab %d",
                     (int)count, (int)m->hp.n_vocab);
        return false;
    }
    m->token_text = calloc((size_t)m->hp.n_vocab, sizeof(char *));
    m->token_len = calloc((size_t)m->hp.n_vocab, sizeof(uint32_t));
    if (!m->token_text || !m->token_len) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
        return false;
    }
    for (int32_t i = 0; i < count; i++) {
        int32_t len;
        if (!read_i32(r, &len, "token length")) return false;
        if (len < 0 || len > 1024) {
            fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: token %d has length %d", (int)i,
                         (int)len);
            return false;
        }
        const char *text = (const char *)r->p;
        if (!read_bytes(r, NULL, (size_t)len, "token text")) return false;
        /* ids the format reserves for specials get their names, whatever the file says */
        if (i < m->sp.eot && !set_token(m, i, text, (size_t)len)) goto nomem;
    }
    m->n_file_tokens = count < m->sp.eot ? count : m->sp.eot;
    for (int32_t i = m->n_file_tokens; i < m->hp.n_vocab; i++) {
        char name[48];
        if (i < m->sp.eot)
            name[0] = '\0'; /* a short file: no text for this id */
        else
            special_name(m, i, name, sizeof name);
        if (!set_token(m, i, name, strlen(name))) goto nomem;
    }
    return true;
nomem:
    fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
    return false;
}

/* One tensor record of the file. */
typedef struct file_tensor {
    char name[WH_MAX_NAME];
    fl_tensor t;
} file_tensor;

typedef struct tensor_list {
    file_tensor *items;
    size_t n, cap;
} tensor_list;

static bool read_tensor(reader *r, file_tensor *ft, fluid_error *err) {
    int32_t n_dims, name_len, type;
    if (!read_i32(r, &n_dims, "tensor dims") || !read_i32(r, &name_len, "tensor name length") ||
        !read_i32(r, &type, "tensor type"))
        return false;
    if (n_dims < 1 || n_dims > FL_MAX_DIMS || name_len < 1 || name_len >= WH_MAX_NAME) {
        fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: bad tensor header at offset %zu",
                     reader_offset(r));
        return false;
    }
    const fl_type_traits *tr = fl_type_traits_of((uint32_t)type);
    memset(ft, 0, sizeof(*ft));
    int64_t n_el = 1;
    for (int d = 0; d < FL_MAX_DIMS; d++) ft->t.ne[d] = 1;
    for (int d = 0; d < n_dims; d++) {
        int32_t ne;
        if (!read_i32(r, &ne, "tensor shape")) return false;
        if (ne <= 0 || ne > (1 << 24) || n_el > (INT64_C(1) << 40) / ne) {
            fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: bad tensor dimension %d", (int)ne);
            return false;
        }
        ft->t.ne[d] = ne;
        n_el *= ne;
    }
    if (!read_bytes(r, ft->name, (size_t)name_len, "tensor name")) return false;
    ft->name[name_len] = '\0';
    if (tr == NULL || !fl_kernels_support((fl_type)type)) {
        fl_set_error(err, FLUID_ERR_UNSUPPORTED, "whisper model: tensor %s has unsupported type %d",
                     ft->name, (int)type);
        return false;
    }
    size_t bytes = fl_row_bytes((fl_type)type, ft->t.ne[0]);
    if (bytes == 0) {
        fl_set_error(err, FLUID_ERR_FORMAT, "whisper model: tensor %s: %lld columns do not fit %s",
                     ft->name, (long long)ft->t.ne[0], tr->name);
        return false;
    }
    bytes *= (size_t)(n_el / ft->t.ne[0]);
    ft->t.type = (fl_type)type;
    ft->t.n_dims = n_dims;
    ft->t.nbytes = bytes;
    ft->t.data = r->p;
    return read_bytes(r, NULL, bytes, ft->name);
}

static bool read_tensors(reader *r, tensor_list *list, fluid_error *err) {
    while (r->left > 0) {
        if (list->n == list->cap) {
            size_t cap = list->cap ? list->cap * 2 : 256;
            file_tensor *items = realloc(list->items, cap * sizeof(*items));
            if (!items) {
                fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
                return false;
            }
            list->items = items;
            list->cap = cap;
        }
        if (!read_tensor(r, &list->items[list->n], err)) return false;
        list->items[list->n].t.name = NULL; /* names live in the list, freed after loading */
        list->n++;
    }
    return true;
}

/* ---- binding tensors to the model -------------------------------------------------------- */

typedef struct binder {
    fluid_whisper *m;
    const tensor_list *list;
    fluid_error *err;
    bool ok;
} binder;

static const fl_tensor *find_tensor(binder *b, const char *name, int64_t ne0, int64_t ne1,
                                    int64_t ne2) {
    if (!b->ok) return NULL;
    for (size_t i = 0; i < b->list->n; i++) {
        const file_tensor *ft = &b->list->items[i];
        if (strcmp(ft->name, name) != 0) continue;
        if (ft->t.ne[0] != ne0 || ft->t.ne[1] != ne1 || ft->t.ne[2] != ne2 || ft->t.ne[3] != 1) {
            fl_set_error(b->err, FLUID_ERR_FORMAT,
                         "whisper model: tensor %s is [%lld, %lld, %lld], expected [%lld, %lld, "
                         "%lld]",
                         name, (long long)ft->t.ne[0], (long long)ft->t.ne[1],
                         (long long)ft->t.ne[2], (long long)ne0, (long long)ne1, (long long)ne2);
            b->ok = false;
            return NULL;
        }
        b->m->n_params += (uint64_t)fl_tensor_nelements(&ft->t);
        return &ft->t;
    }
    fl_set_error(b->err, FLUID_ERR_FORMAT, "whisper model: tensor %s is missing", name);
    b->ok = false;
    return NULL;
}

static fl_tensor bind_matrix(binder *b, const char *name, int64_t cols, int64_t rows) {
    fl_tensor out = {0};
    const fl_tensor *t = find_tensor(b, name, cols, rows, 1);
    if (t) out = *t;
    return out;
}

/* Converts a small tensor of n elements (any type) into floats owned by the model. */
static const float *bind_floats(binder *b, const char *name, int64_t ne0, int64_t ne1) {
    const fl_tensor *t = find_tensor(b, name, ne0, ne1, 1);
    if (!t) return NULL;
    float *dst = malloc((size_t)(ne0 * ne1) * sizeof(float));
    float **owned = realloc(b->m->owned, (b->m->n_owned + 1) * sizeof(float *));
    if (!dst || !owned) {
        free(dst);
        if (owned) b->m->owned = owned;
        fl_set_error(b->err, FLUID_ERR_NOMEM, "whisper model: out of memory");
        b->ok = false;
        return NULL;
    }
    b->m->owned = owned;
    b->m->owned[b->m->n_owned++] = dst;
    for (int64_t row = 0; row < ne1; row++) fl_dequantize_row(t, row, dst + row * ne0);
    return dst;
}

/* buf (WH_MAX_NAME bytes) = a + b, cut if too long (then the lookup reports it missing). */
static void join_name(char *buf, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > WH_MAX_NAME - 1) la = WH_MAX_NAME - 1;
    if (lb > WH_MAX_NAME - 1 - la) lb = WH_MAX_NAME - 1 - la;
    memmove(buf, a, la);
    memmove(buf + la, b, lb);
    buf[la + lb] = '\0';
}

static const float *bind_vector(binder *b, const char *prefix, const char *name, int64_t n) {
    char full[WH_MAX_NAME];
    join_name(full, prefix, name);
    return bind_floats(b, full, n, 1);
}

static wh_norm bind_norm(binder *b, const char *prefix, const char *name, int64_t n) {
    char w[WH_MAX_NAME], bias[WH_MAX_NAME];
    join_name(w, name, ".weight");
    join_name(bias, name, ".bias");
    wh_norm norm = {bind_vector(b, prefix, w, n), bind_vector(b, prefix, bias, n)};
    return norm;
}

static fl_tensor bind_square(binder *b, const char *prefix, const char *name, int64_t n) {
    char full[WH_MAX_NAME];
    join_name(full, prefix, name);
    return bind_matrix(b, full, n, n);
}

static wh_attn bind_attn(binder *b, const char *prefix, const char *kind, int64_t n) {
    char p[WH_MAX_NAME];
    join_name(p, prefix, kind);
    join_name(p, p, ".");
    wh_attn a;
    a.q = bind_square(b, p, "query.weight", n);
    a.q_b = bind_vector(b, p, "query.bias", n);
    a.k = bind_square(b, p, "key.weight", n);
    a.v = bind_square(b, p, "value.weight", n);
    a.v_b = bind_vector(b, p, "value.bias", n);
    a.o = bind_square(b, p, "out.weight", n);
    a.o_b = bind_vector(b, p, "out.bias", n);
    return a;
}

static void bind_block(binder *b, wh_block *blk, const char *side, int i, int64_t n, bool cross) {
    char p[WH_MAX_NAME], name[WH_MAX_NAME];
    snprintf(p, sizeof p, "%s.blocks.%d.", side, i);
    blk->attn_ln = bind_norm(b, p, "attn_ln", n);
    blk->attn = bind_attn(b, p, "attn", n);
    if (cross) {
        blk->cross_ln = bind_norm(b, p, "cross_attn_ln", n);
        blk->cross = bind_attn(b, p, "cross_attn", n);
    }
    blk->mlp_ln = bind_norm(b, p, "mlp_ln", n);
    join_name(name, p, "mlp.0.weight");
    blk->mlp0 = bind_matrix(b, name, n, 4 * n);
    blk->mlp0_b = bind_vector(b, p, "mlp.0.bias", 4 * n);
    join_name(name, p, "mlp.2.weight");
    blk->mlp2 = bind_matrix(b, name, 4 * n, n);
    blk->mlp2_b = bind_vector(b, p, "mlp.2.bias", n);
}

/* conv weights are [3, n_in, n_out]: viewed as n_out rows of 3 * n_in (index i * 3 + k). */
static fl_tensor bind_conv(binder *b, const char *name, int64_t n_in, int64_t n_out) {
    fl_tensor out = {0};
    const fl_tensor *t = find_tensor(b, name, 3, n_in, n_out);
    if (!t) return out;
    out = *t;
    out.n_dims = 2;
    out.ne[0] = 3 * n_in;
    out.ne[1] = n_out;
    out.ne[2] = 1;
    return out;
}

static bool bind_model(fluid_whisper *m, const tensor_list *list, fluid_error *err) {
    binder b = {m, list, err, true};
    const wh_hparams *hp = &m->hp;
    int64_t na = hp->n_audio_state, nt = hp->n_text_state;
    m->enc = calloc((size_t)hp->n_audio_layer, sizeof(wh_block));
    m->dec = calloc((size_t)hp->n_text_layer, sizeof(wh_block));
    if (!m->enc || !m->dec) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
        return false;
    }
    m->conv1 = bind_conv(&b, "encoder.conv1.weight", hp->n_mels, na);
    m->conv1_b = bind_floats(&b, "encoder.conv1.bias", 1, na);
    m->conv2 = bind_conv(&b, "encoder.conv2.weight", na, na);
    m->conv2_b = bind_floats(&b, "encoder.conv2.bias", 1, na);
    m->enc_pos = bind_floats(&b, "encoder.positional_embedding", na, hp->n_audio_ctx);
    for (int i = 0; i < hp->n_audio_layer; i++) bind_block(&b, &m->enc[i], "encoder", i, na, false);
    m->enc_ln = bind_norm(&b, "encoder.", "ln_post", na);
    m->tok_emb = bind_matrix(&b, "decoder.token_embedding.weight", nt, hp->n_vocab);
    m->dec_pos = bind_floats(&b, "decoder.positional_embedding", nt, hp->n_text_ctx);
    for (int i = 0; i < hp->n_text_layer; i++) bind_block(&b, &m->dec[i], "decoder", i, nt, true);
    m->dec_ln = bind_norm(&b, "decoder.", "ln", nt);
    if (b.ok) m->wtype = m->tok_emb.type == FL_TYPE_F32 ? m->enc[0].mlp0.type : m->tok_emb.type;
    return b.ok;
}

static void unmap_file(fluid_whisper *m) {
    if (m->map == NULL) return;
    fl_mapguard_remove(m->map_guard);
    munmap((void *)m->map, m->map_bytes);
    m->map = NULL;
}

static bool map_file(fluid_whisper *m, const char *path, fluid_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fl_set_error(err, FLUID_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 4) {
        close(fd);
        fl_set_error(err, FLUID_ERR_FORMAT, "%s: not a whisper model (too small)", path);
        return false;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        fl_set_error(err, FLUID_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        return false;
    }
    m->map = p;
    m->map_bytes = (size_t)st.st_size;
    m->map_guard = fl_mapguard_add(p, m->map_bytes);
    return true;
}

/* The format does not align tensor data, and the kernels want aligned blocks: the tensors are
 * copied into one buffer, each at a 64-byte boundary. */
static bool relocate_tensors(fluid_whisper *m, tensor_list *list, fluid_error *err) {
    size_t total = 0;
    for (size_t i = 0; i < list->n; i++) total += (list->items[i].t.nbytes + 63) & ~(size_t)63;
    m->weights = aligned_alloc(64, total > 0 ? total : 64);
    if (!m->weights) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory for %zu bytes", total);
        return false;
    }
    uint8_t *at = m->weights;
    for (size_t i = 0; i < list->n; i++) {
        fl_tensor *t = &list->items[i].t;
        memcpy(at, t->data, t->nbytes);
        t->data = at;
        at += (t->nbytes + 63) & ~(size_t)63;
    }
    return true;
}

static bool parse_model(fluid_whisper *m, const char *path, bool header_only, fluid_error *err) {
    reader r = {m->map, m->map_bytes, m->map_bytes, err};
    uint32_t magic;
    if (!read_bytes(&r, &magic, 4, "magic")) return false;
    if (magic != WH_MAGIC) {
        fl_set_error(err, FLUID_ERR_FORMAT, "%s: not a ggml whisper model (magic %08x)", path,
                     magic);
        return false;
    }
    if (!read_bytes(&r, &m->hp, sizeof(m->hp), "hparams") || !check_hparams(&m->hp, err))
        return false;
    if (!wh_specials_from_vocab(m->hp.n_vocab, &m->sp)) {
        fl_set_error(err, FLUID_ERR_UNSUPPORTED, "%s: n_vocab %d is not a whisper vocabulary", path,
                     (int)m->hp.n_vocab);
        return false;
    }
    if (!read_mel_filters(m, &r, err) || !read_vocab(m, &r, err)) return false;
    m->header_bytes = reader_offset(&r);
    if (!wh_bpe_init(m)) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
        return false;
    }
    if (header_only) return true;
    tensor_list list = {0};
    bool ok = read_tensors(&r, &list, err);
    if (ok && list.n == 0) {
        ok = false;
        fl_set_error(err, FLUID_ERR_FORMAT, "%s: the model has no tensors (header-only file)",
                     path);
    }
    if (ok) ok = relocate_tensors(m, &list, err);
    if (ok) ok = bind_model(m, &list, err);
    free(list.items);
    if (ok && fl_mapguard_damaged(m->map_guard)) {
        ok = false;
        fl_set_error(err, FLUID_ERR_IO, "%s: the file changed on disk while it was being loaded",
                     path);
    }
    if (ok) unmap_file(m); /* every byte needed was copied: the mapping can go */
    return ok;
}

static fluid_whisper *load(const char *path, bool header_only, fluid_error *err) {
    fluid_whisper *m = calloc(1, sizeof(*m));
    if (!m) {
        fl_set_error(err, FLUID_ERR_NOMEM, "whisper model: out of memory");
        return NULL;
    }
    if (!map_file(m, path, err) || !parse_model(m, path, header_only, err)) {
        fluid_whisper_free(m);
        return NULL;
    }
    return m;
}

fluid_whisper *fluid_whisper_load(const char *path, fluid_error *err) {
    return load(path, false, err);
}

fluid_whisper *wh_load_header(const char *path, fluid_error *err) {
    return load(path, true, err);
}

void fluid_whisper_free(fluid_whisper *m) {
    if (!m) return;
    if (m->token_text) {
        for (int32_t i = 0; i < m->hp.n_vocab; i++) free(m->token_text[i]);
    }
    free(m->token_text);
    free(m->token_len);
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->mel_filters_owned);
    free(m->enc);
    free(m->dec);
    wh_bpe_free(m);
    free(m->weights);
    unmap_file(m);
    free(m);
}

static const char *size_name(const wh_hparams *hp) {
    static const struct {
        int32_t layers, state;
        const char *name;
    } sizes[] = {{4, 384, "tiny"},
                 {6, 512, "base"},
                 {12, 768, "small"},
                 {24, 1024, "medium"},
                 {32, 1280, "large"}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (hp->n_audio_layer == sizes[i].layers && hp->n_audio_state == sizes[i].state)
            return sizes[i].name;
    }
    return "custom";
}

void fluid_whisper_get_info(const fluid_whisper *m, fluid_whisper_info *info) {
    memset(info, 0, sizeof(*info));
    const fl_type_traits *tr = fl_type_traits_of(m->wtype);
    info->type_name = tr ? tr->name : "unknown";
    info->size_name = size_name(&m->hp);
    info->multilingual = m->sp.multilingual;
    info->n_vocab = m->hp.n_vocab;
    info->n_mels = m->hp.n_mels;
    info->n_audio_ctx = m->hp.n_audio_ctx;
    info->n_audio_state = m->hp.n_audio_state;
    info->n_audio_head = m->hp.n_audio_head;
    info->n_audio_layer = m->hp.n_audio_layer;
    info->n_text_ctx = m->hp.n_text_ctx;
    info->n_text_state = m->hp.n_text_state;
    info->n_text_head = m->hp.n_text_head;
    info->n_text_layer = m->hp.n_text_layer;
    info->n_languages = m->sp.multilingual ? m->sp.n_lang : 0;
    info->n_params = m->n_params;
    info->file_bytes = m->map_bytes;
}

const char *fluid_whisper_token_text(const fluid_whisper *m, int32_t token) {
    if (token < 0 || token >= m->hp.n_vocab) return NULL;
    return m->token_text[token];
}

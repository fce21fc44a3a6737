/* Loading a vocabulary from GGUF metadata (tokenizer.ggml.*), validating it, and the
 * look-up tables the tokenizers use. */
#include "engine/vocab_impl.h"
#include "util/error.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENS (1 << 24)

/* ---- hashing ---------------------------------------------------------------------------- */

static uint64_t mix64(uint64_t h) {
    h ^= h >> 31;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

uint64_t fl_hash_bytes(const char *s, size_t len) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ ((uint64_t)len * 0xff51afd7ed558ccdull);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 27;
        s += 8;
        len -= 8;
    }
    if (len > 0) {
        uint64_t w = 0;
        memcpy(&w, s, len);
        h ^= w;
    }
    return mix64(h);
}

/* ---- string table ----------------------------------------------------------------------- */

static bool str_table_init(fl_str_table *t, int32_t cap) {
    memset(t, 0, sizeof *t);
    uint32_t nslots = 16;
    while (nslots < (uint32_t)cap * 2u) nslots <<= 1;
    t->strs = malloc(sizeof *t->strs * (size_t)cap);
    t->lens = malloc(sizeof *t->lens * (size_t)cap);
    t->slots = malloc(sizeof *t->slots * nslots);
    if (!t->strs || !t->lens || !t->slots) return false;
    memset(t->slots, 0xff, sizeof *t->slots * nslots);
    t->mask = nslots - 1;
    t->cap = cap;
    return true;
}

static void str_table_free(fl_str_table *t) {
    free(t->strs);
    free(t->lens);
    free(t->slots);
}

/* The slot holding s, or the empty slot where it would go. */
static uint32_t str_table_slot(const fl_str_table *t, const char *s, size_t len) {
    uint32_t i = (uint32_t)fl_hash_bytes(s, len) & t->mask;
    for (;;) {
        int32_t id = t->slots[i];
        if (id < 0 || (t->lens[id] == len && memcmp(t->strs[id], s, len) == 0)) return i;
        i = (i + 1) & t->mask;
    }
}

int32_t fl_str_table_find(const fl_str_table *t, const char *s, size_t len) {
    return t->slots[str_table_slot(t, s, len)];
}

static bool str_table_grow(fl_str_table *t) {
    int32_t cap = t->cap * 2;
    const char **strs = realloc(t->strs, sizeof *strs * (size_t)cap);
    if (!strs) return false;
    t->strs = strs;
    uint32_t *lens = realloc(t->lens, sizeof *lens * (size_t)cap);
    if (!lens) return false;
    t->lens = lens;
    uint32_t nslots = (t->mask + 1) * 2;
    int32_t *slots = malloc(sizeof *slots * nslots);
    if (!slots) return false;
    memset(slots, 0xff, sizeof *slots * nslots);
    free(t->slots);
    t->slots = slots;
    t->mask = nslots - 1;
    t->cap = cap;
    for (int32_t id = 0; id < t->n; id++) {
        if (t->lens[id] == UINT32_MAX) continue; /* not indexed (empty or shadowed token) */
        t->slots[str_table_slot(t, t->strs[id], t->lens[id])] = id;
    }
    return true;
}

/* Appends a string (kept by pointer) as the next id; when the same text is already indexed
 * the new id takes over the look-up, as a later duplicate token does. An empty string gets an
 * id but is never found (no token can be produced from nothing). */
static int32_t str_table_append(fl_str_table *t, const char *s, uint32_t len) {
    if (t->n == t->cap && !str_table_grow(t)) return -1;
    int32_t id = t->n++;
    t->strs[id] = s;
    t->lens[id] = len == 0 ? UINT32_MAX : len;
    if (len == 0) return id;
    uint32_t slot = str_table_slot(t, s, len);
    if (t->slots[slot] >= 0) t->lens[t->slots[slot]] = UINT32_MAX;
    t->slots[slot] = id;
    return id;
}

/* ---- merges ----------------------------------------------------------------------------- */

static uint64_t merge_key(int32_t a, int32_t b) {
    return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}

const fl_merge *fl_merge_find(const fl_merge_table *t, int32_t a, int32_t b) {
    if (!t->slots) return NULL;
    uint64_t key = merge_key(a, b);
    uint32_t i = (uint32_t)mix64(key) & t->mask;
    for (;;) {
        const fl_merge *m = &t->slots[i];
        if (m->key == key) return m;
        if (m->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->mask;
    }
}

/* Keeps the first rank of a pair listed twice. */
static void merge_insert(fl_merge_table *t, int32_t a, int32_t b, int32_t rank, int32_t result) {
    uint64_t key = merge_key(a, b);
    uint32_t i = (uint32_t)mix64(key) & t->mask;
    while (t->slots[i].key != UINT64_MAX) {
        if (t->slots[i].key == key) return;
        i = (i + 1) & t->mask;
    }
    t->slots[i] = (fl_merge){.key = key, .rank = rank, .result = result};
}

/* ---- a small arena for strings the file does not hold as tokens ------------------------- */

typedef struct fl_arena_block {
    struct fl_arena_block *next;
    size_t used, size;
    char data[];
} arena_block;

static char *arena_copy(arena_block **head, const char *s, size_t len) {
    arena_block *b = *head;
    if (!b || b->size - b->used < len + 1) {
        size_t size = len + 1 > 65536 ? len + 1 : 65536;
        b = malloc(sizeof *b + size);
        if (!b) return NULL;
        b->next = *head;
        b->used = 0;
        b->size = size;
        *head = b;
    }
    char *p = b->data + b->used;
    memcpy(p, s, len);
    p[len] = '\0';
    b->used += len + 1;
    return p;
}

static void arena_free(arena_block *b) {
    while (b) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
}

/* The vocabulary as it is being built, with what only loading needs. */
typedef struct loader {
    fluid_vocab *v;
    const gguf_file *f;
    fluid_error *err;
    arena_block *arena;
} loader;

/* ---- reading the file ------------------------------------------------------------------- */

static bool str_equals(gguf_str s, const char *lit) {
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static fluid_status read_tokens(loader *L) {
    fluid_vocab *v = L->v;
    gguf_type type;
    uint64_t count;
    const void *data;
    if (!gguf_get_arr(L->f, "tokenizer.ggml.tokens", &type, &count, &data))
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: tokenizer.ggml.tokens is missing");
    if (type != GGUF_TYPE_STRING)
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: tokenizer.ggml.tokens is not an array of strings");
    if (count == 0 || count > MAX_TOKENS)
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: %llu tokens is not a usable size",
                            (unsigned long long)count);
    v->n_tokens = (int32_t)count;
    v->tokens = calloc(count, sizeof *v->tokens);
    if (!v->tokens) return fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");

    size_t pool = 0;
    for (uint64_t i = 0; i < count; i++) {
        gguf_str s;
        if (!gguf_get_arr_str(L->f, "tokenizer.ggml.tokens", i, &s) || s.len > UINT32_MAX / 2)
            return fl_set_error(L->err, FLUID_ERR_FORMAT, "vocabulary: token %llu is unreadable",
                                (unsigned long long)i);
        pool += s.len + 1;
    }
    v->text_pool = malloc(pool);
    if (!v->text_pool || !str_table_init(&v->table, v->n_tokens + 64))
        return fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
    char *p = v->text_pool;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        gguf_str s;
        gguf_get_arr_str(L->f, "tokenizer.ggml.tokens", (uint64_t)i, &s);
        if (s.len > 0) memcpy(p, s.ptr, s.len);
        p[s.len] = '\0';
        v->tokens[i].text = p;
        v->tokens[i].len = (uint32_t)s.len;
        v->tokens[i].attr = FL_ATTR_NORMAL;
        if ((int)s.len > v->max_token_len) v->max_token_len = (int32_t)s.len;
        p += s.len + 1;
        if (str_table_append(&v->table, v->tokens[i].text, (uint32_t)s.len) < 0)
            return fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
    }
    return FLUID_OK;
}

/* An optional per-token numeric array: NULL data when absent; an error when malformed. */
static fluid_status numeric_array(loader *L, const char *key, gguf_type want, gguf_type alt,
                                  const void **data) {
    gguf_type type;
    uint64_t count;
    *data = NULL;
    if (gguf_find_key(L->f, key) < 0) return FLUID_OK;
    if (!gguf_get_arr(L->f, key, &type, &count, data) || (type != want && type != alt))
        return fl_set_error(L->err, FLUID_ERR_FORMAT, "vocabulary: %s has the wrong element type",
                            key);
    if (count < (uint64_t)L->v->n_tokens)
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: %s has %llu entries for %d tokens", key,
                            (unsigned long long)count, L->v->n_tokens);
    return FLUID_OK;
}

static uint32_t attr_from_type(int32_t type) {
    switch (type) {
    case FL_TOKTYPE_UNKNOWN:
        return FL_ATTR_UNKNOWN;
    case FL_TOKTYPE_CONTROL:
        return FL_ATTR_CONTROL;
    case FL_TOKTYPE_USER_DEFINED:
        return FL_ATTR_USER_DEFINED;
    case FL_TOKTYPE_UNUSED:
        return FL_ATTR_UNUSED;
    case FL_TOKTYPE_BYTE:
        return FL_ATTR_BYTE;
    case FL_TOKTYPE_NORMAL:
        return FL_ATTR_NORMAL;
    default:
        return 0; /* undefined: treated like an unused token */
    }
}

static fluid_status read_scores_and_types(loader *L) {
    const void *scores, *types;
    fluid_status st =
        numeric_array(L, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, GGUF_TYPE_FLOAT32, &scores);
    if (st != FLUID_OK) return st;
    st = numeric_array(L, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, GGUF_TYPE_UINT32, &types);
    if (st != FLUID_OK) return st;
    for (int32_t i = 0; i < L->v->n_tokens; i++) {
        fl_token *t = &L->v->tokens[i];
        if (scores) memcpy(&t->score, (const char *)scores + 4 * (size_t)i, 4);
        if (types) {
            int32_t type;
            memcpy(&type, (const char *)types + 4 * (size_t)i, 4);
            t->attr = attr_from_type(type);
        }
    }
    return FLUID_OK;
}

/* Interns a merge part (or a merged string) that may not be a token. */
static int32_t intern(loader *L, const char *s, size_t len) {
    int32_t id = fl_str_table_find(&L->v->table, s, len);
    if (id >= 0) return id;
    char *copy = arena_copy(&L->arena, s, len);
    return copy ? str_table_append(&L->v->table, copy, (uint32_t)len) : -1;
}

static fluid_status read_merges(loader *L) {
    fluid_vocab *v = L->v;
    const char *key = "tokenizer.ggml.merges";
    gguf_type type;
    uint64_t count;
    const void *data;
    if (!gguf_get_arr(L->f, key, &type, &count, &data))
        return fl_set_error(L->err, FLUID_ERR_FORMAT, "vocabulary: BPE model without %s", key);
    if (type != GGUF_TYPE_STRING || count > (uint64_t)INT32_MAX / 4)
        return fl_set_error(L->err, FLUID_ERR_FORMAT, "vocabulary: %s is not an array of strings",
                            key);
    uint32_t nslots = 16;
    while (nslots < count * 2) nslots <<= 1;
    v->merges.slots = malloc(sizeof *v->merges.slots * nslots);
    if (!v->merges.slots) return fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
    memset(v->merges.slots, 0xff, sizeof *v->merges.slots * nslots);
    v->merges.mask = nslots - 1;

    char *joined = malloc((size_t)v->max_token_len * 2 + 16);
    size_t joined_cap = (size_t)v->max_token_len * 2 + 16;
    if (!joined) return fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
    fluid_status st = FLUID_OK;
    for (uint64_t i = 0; i < count && st == FLUID_OK; i++) {
        gguf_str s;
        if (!gguf_get_arr_str(L->f, key, i, &s)) {
            st = fl_set_error(L->err, FLUID_ERR_FORMAT, "vocabulary: merge %llu is unreadable",
                              (unsigned long long)i);
            break;
        }
        /* "left right": split at the first space after the first byte (a part may be " ") */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (!sp) continue; /* unusable entry: skipped, as it can never apply */
        size_t llen = (size_t)(sp - s.ptr), rlen = s.len - llen - 1;
        if (llen + rlen > joined_cap) {
            char *bigger = realloc(joined, llen + rlen);
            if (!bigger) {
                st = fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
                break;
            }
            joined = bigger;
            joined_cap = llen + rlen;
        }
        memcpy(joined, s.ptr, llen);
        memcpy(joined + llen, sp + 1, rlen);
        int32_t a = intern(L, s.ptr, llen);
        int32_t b = intern(L, sp + 1, rlen);
        int32_t r = intern(L, joined, llen + rlen);
        if (a < 0 || b < 0 || r < 0) {
            st = fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
            break;
        }
        merge_insert(&v->merges, a, b, (int32_t)i, r);
    }
    free(joined);
    return st;
}

/* Reads an optional token id; out-of-range ids are an error. */
static fluid_status read_token_id(loader *L, const char *key, int32_t *id) {
    int64_t value;
    if (gguf_find_key(L->f, key) < 0) {
        if (*id >= L->v->n_tokens) *id = -1; /* a default that this vocabulary lacks */
        return FLUID_OK;
    }
    if (!gguf_get_i64(L->f, key, &value))
        return fl_set_error(L->err, FLUID_ERR_FORMAT, "vocabulary: %s is not an integer", key);
    if (value < 0 || value >= L->v->n_tokens)
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: %s = %lld is outside the %d tokens", key, (long long)value,
                            L->v->n_tokens);
    *id = (int32_t)value;
    return FLUID_OK;
}

static fluid_status read_special_ids(loader *L) {
    fluid_vocab *v = L->v;
    const struct {
        const char *key;
        int32_t *id;
    } keys[] = {
        {"tokenizer.ggml.bos_token_id", &v->bos},
        {"tokenizer.ggml.eos_token_id", &v->eos},
        {"tokenizer.ggml.eot_token_id", &v->eot},
        {"tokenizer.ggml.eom_token_id", &v->eom},
        {"tokenizer.ggml.unknown_token_id", &v->unk},
        {"tokenizer.ggml.seperator_token_id", &v->sep},
        {"tokenizer.ggml.padding_token_id", &v->pad},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        fluid_status st = read_token_id(L, keys[i].key, keys[i].id);
        if (st != FLUID_OK) return st;
    }
    return FLUID_OK;
}

static void read_flag(const gguf_file *f, const char *key, bool *flag) {
    bool value;
    if (gguf_get_bool(f, key, &value)) *flag = value;
}

/* Token texts that end a generation although the file may not say so (the convention other
 * GGUF readers follow); they are also treated as control tokens. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|return|>",
    "<|call|>",
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
};

static void mark_end_of_generation(fluid_vocab *v) {
    for (size_t i = 0; i < sizeof EOG_TEXTS / sizeof EOG_TEXTS[0]; i++) {
        int32_t id = fl_vocab_find(v, EOG_TEXTS[i]);
        if (id >= 0) v->tokens[id].attr |= FL_ATTR_EOG | FL_ATTR_CONTROL;
    }
    /* "<|end|>" is a message separator, not the end, where <|return|> and <|call|> exist */
    int32_t end = fl_vocab_find(v, "<|end|>");
    if (end >= 0 && fl_vocab_find(v, "<|return|>") >= 0 && fl_vocab_find(v, "<|call|>") >= 0)
        v->tokens[end].attr &= ~(uint32_t)FL_ATTR_EOG;
    const int32_t ids[] = {v->eos, v->eot, v->eom};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0) v->tokens[ids[i]].attr |= FL_ATTR_EOG;
}

static bool contains_ci(const char *hay, size_t len, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n && tolower((unsigned char)hay[i + k]) == needle[k]) k++;
        if (k == n) return true;
    }
    return false;
}

/* Phi-3's special tokens swallow the whitespace that follows them (except <unk>, <s> and
 * <|endoftext|>), as in the model's own tokenizer. */
static void set_strip_attributes(fluid_vocab *v, const gguf_file *f) {
    gguf_str name;
    if (!gguf_get_str(f, "general.name", &name)) return;
    if (!contains_ci(name.ptr, name.len, "phi-3") && !contains_ci(name.ptr, name.len, "phi3"))
        return;
    for (int32_t i = 0; i < v->n_specials; i++) v->tokens[v->specials[i]].attr |= FL_ATTR_RSTRIP;
    const char *keep[] = {"<unk>", "<s>", "<|endoftext|>"};
    int32_t eos_text = fl_vocab_find(v, "</s>");
    if (eos_text >= 0) v->tokens[eos_text].attr |= FL_ATTR_RSTRIP;
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        int32_t id = fl_vocab_find(v, keep[i]);
        if (id >= 0) v->tokens[id].attr &= ~(uint32_t)FL_ATTR_RSTRIP;
    }
}

static int compare_special(const void *a, const void *b, void *ctx) {
    const fluid_vocab *v = ctx;
    const fl_token *ta = &v->tokens[*(const int32_t *)a], *tb = &v->tokens[*(const int32_t *)b];
    unsigned char ca = (unsigned char)ta->text[0], cb = (unsigned char)tb->text[0];
    if (ca != cb) return ca < cb ? -1 : 1;
    if (ta->len != tb->len) return ta->len > tb->len ? -1 : 1;
    return *(const int32_t *)a - *(const int32_t *)b;
}

/* Tokens matched in raw text before it is tokenized: control, user-defined, unknown. */
static fluid_status collect_specials(loader *L) {
    fluid_vocab *v = L->v;
    const uint32_t mask = FL_ATTR_CONTROL | FL_ATTR_USER_DEFINED | FL_ATTR_UNKNOWN;
    int32_t n = 0;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if ((v->tokens[i].attr & mask) && v->tokens[i].len > 0) n++;
    v->specials = malloc(sizeof *v->specials * (size_t)(n > 0 ? n : 1));
    if (!v->specials) return fl_set_error(L->err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
    for (int32_t i = 0; i < v->n_tokens; i++)
        if ((v->tokens[i].attr & mask) && v->tokens[i].len > 0) v->specials[v->n_specials++] = i;
    qsort_r(v->specials, (size_t)n, sizeof *v->specials, compare_special, v);
    int32_t i = 0;
    for (int c = 0; c < 256; c++) {
        v->special_start[c] = i;
        while (i < n && (unsigned char)v->tokens[v->specials[i]].text[0] == c) i++;
    }
    v->special_start[256] = n;
    return FLUID_OK;
}

static void find_byte_tables(fluid_vocab *v) {
    for (int b = 0; b < 256; b++) {
        char text[8];
        snprintf(text, sizeof text, "<0x%02X>", b);
        v->byte_token[b] = fl_vocab_lookup(v, text, 6);
        size_t n = fl_utf8_encode(fl_byte_to_cp((uint8_t)b), text);
        v->byte_symbol[b] = fl_str_table_find(&v->table, text, n);
    }
}

/* Settings that follow from tokenizer.ggml.model and .pre, before the file's own flags. */
static fluid_status choose_model(loader *L, gguf_str model, gguf_str pre, bool has_pre) {
    fluid_vocab *v = L->v;
    v->bos = v->eos = v->eot = v->eom = v->unk = v->sep = v->pad = -1;
    if (str_equals(model, "llama")) {
        v->kind = FL_VOCAB_SPM;
        v->bos = 1;
        v->eos = 2;
        v->unk = 0;
        v->add_bos = true;
        v->add_space_prefix = true;
        return FLUID_OK;
    }
    if (str_equals(model, "bert")) {
        v->kind = FL_VOCAB_WPM;
        v->bos = 101;
        v->unk = 100;
        v->sep = 102;
        v->pad = 0;
        v->add_bos = true;
        v->add_sep = true;
        v->wpm_lowercase = true;
        return FLUID_OK;
    }
    bool gemma4 = str_equals(model, "gemma4");
    if (!gemma4 && !str_equals(model, "gpt2"))
        return fl_set_error(L->err, FLUID_ERR_UNSUPPORTED,
                            "vocabulary: tokenizer model '%.*s' is not supported",
                            (int)(model.len > 64 ? 64 : model.len), model.ptr);
    v->kind = FL_VOCAB_BPE;
    v->byte_encode = !gemma4;
    v->escape_whitespaces = gemma4;
    v->newline_runs_whole = gemma4;
    v->add_bos = gemma4;
    const char *pre_name = gemma4 ? "gemma4" : has_pre ? pre.ptr : "default";
    size_t pre_len = gemma4 ? 6 : has_pre ? pre.len : 7;
    v->pretok = fl_pretok_create(pre_name, pre_len, L->err);
    if (!v->pretok) return L->err ? L->err->code : FLUID_ERR_UNSUPPORTED;
    fl_pretok_flags(v->pretok, &v->ignore_merges, &v->add_bos);
    return FLUID_OK;
}

static fluid_status load(loader *L) {
    gguf_str model, pre = {0};
    if (!gguf_get_str(L->f, "tokenizer.ggml.model", &model))
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: tokenizer.ggml.model is missing (no tokenizer in file)");
    bool has_pre = gguf_get_str(L->f, "tokenizer.ggml.pre", &pre);
    fluid_status st = read_tokens(L);
    if (st == FLUID_OK) st = read_scores_and_types(L);
    if (st == FLUID_OK) st = choose_model(L, model, pre, has_pre);
    if (st == FLUID_OK && L->v->kind == FL_VOCAB_BPE) st = read_merges(L);
    if (st == FLUID_OK) st = read_special_ids(L);
    if (st != FLUID_OK) return st;

    fluid_vocab *v = L->v;
    bool forced_bos = v->escape_whitespaces; /* gemma4 always starts with BOS */
    read_flag(L->f, "tokenizer.ggml.add_bos_token", &v->add_bos);
    read_flag(L->f, "tokenizer.ggml.add_eos_token", &v->add_eos);
    read_flag(L->f, "tokenizer.ggml.add_sep_token", &v->add_sep);
    read_flag(L->f, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    if (forced_bos) v->add_bos = true;
    if ((v->add_bos && v->bos < 0) || (v->add_eos && v->eos < 0) || (v->add_sep && v->sep < 0))
        return fl_set_error(L->err, FLUID_ERR_FORMAT,
                            "vocabulary: asks for BOS/EOS/SEP tokens it does not define");

    gguf_str tmpl;
    if (gguf_get_str(L->f, "tokenizer.chat_template", &tmpl)) {
        v->chat_template = malloc(tmpl.len + 1);
        if (!v->chat_template) return fl_set_error(L->err, FLUID_ERR_NOMEM, "out of memory");
        memcpy(v->chat_template, tmpl.ptr, tmpl.len);
        v->chat_template[tmpl.len] = '\0';
    }
    mark_end_of_generation(v);
    st = collect_specials(L);
    if (st != FLUID_OK) return st;
    set_strip_attributes(v, L->f);
    find_byte_tables(v);
    v->spm_newline_alone = true;
    for (int32_t i = 0; i < v->n_tokens; i++)
        if (v->tokens[i].len > 1 && memchr(v->tokens[i].text, '\n', v->tokens[i].len))
            v->spm_newline_alone = false;
    return FLUID_OK;
}

fluid_vocab *fl_vocab_from_gguf(const gguf_file *f, fluid_error *err) {
    if (!f) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "vocabulary: no file");
        return NULL;
    }
    loader L = {.f = f, .err = err};
    L.v = calloc(1, sizeof *L.v);
    if (!L.v) {
        fl_set_error(err, FLUID_ERR_NOMEM, "vocabulary: out of memory");
        return NULL;
    }
    fluid_status st = load(&L);
    L.v->arena = L.arena;
    if (st != FLUID_OK) {
        fluid_vocab_free(L.v);
        return NULL;
    }
    return L.v;
}

fluid_vocab *fluid_vocab_load(const char *gguf_path, fluid_error *err) {
    if (!gguf_path) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "fluid_vocab_load: no path");
        return NULL;
    }
    FILE *probe = fopen(gguf_path, "rb");
    if (!probe) {
        fl_set_error(err, FLUID_ERR_IO, "%s: %s", gguf_path, strerror(errno));
        return NULL;
    }
    fclose(probe);
    char msg[256] = "";
    gguf_file *f = gguf_open(gguf_path, msg, sizeof msg);
    if (!f) {
        fl_set_error(err, FLUID_ERR_FORMAT, "%s: %s", gguf_path, msg);
        return NULL;
    }
    fluid_vocab *v = fl_vocab_from_gguf(f, err);
    gguf_close(f);
    return v;
}

void fluid_vocab_free(fluid_vocab *v) {
    if (!v) return;
    str_table_free(&v->table);
    free(v->merges.slots);
    fl_pretok_free(v->pretok);
    arena_free(v->arena);
    free(v->tokens);
    free(v->text_pool);
    free(v->specials);
    free(v->chat_template);
    free(v);
}

/* ---- accessors -------------------------------------------------------------------------- */

int32_t fluid_vocab_size(const fluid_vocab *v) {
    return v ? v->n_tokens : -1;
}

int32_t fluid_token_bos(const fluid_vocab *v) {
    return v ? v->bos : -1;
}

int32_t fluid_token_eos(const fluid_vocab *v) {
    return v ? v->eos : -1;
}

bool fluid_token_is_eog(const fluid_vocab *v, int32_t token) {
    return v && token >= 0 && token < v->n_tokens && (v->tokens[token].attr & FL_ATTR_EOG);
}

const char *fl_vocab_chat_template(const fluid_vocab *v) {
    return v ? v->chat_template : NULL;
}

const char *fl_vocab_token_text(const fluid_vocab *v, int32_t token) {
    return v && token >= 0 && token < v->n_tokens ? v->tokens[token].text : NULL;
}

int32_t fl_vocab_find(const fluid_vocab *v, const char *text) {
    return v && text ? fl_vocab_lookup(v, text, strlen(text)) : -1;
}

/* The inside of a fluid_vocab, shared by the vocabulary loader, the tokenizers (BPE,
 * SentencePiece, WordPiece) and the detokenizer. Not part of the public API. */
#ifndef FLUID_ENGINE_VOCAB_IMPL_H
#define FLUID_ENGINE_VOCAB_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/vocab.h"

/* tokenizer.ggml.model */
typedef enum fl_vocab_kind {
    FL_VOCAB_SPM, /* "llama": SentencePiece with scores and byte fallback */
    FL_VOCAB_BPE, /* "gpt2" (byte-level) and "gemma4" (SentencePiece-style, raw UTF-8) */
    FL_VOCAB_WPM, /* "bert": WordPiece */
} fl_vocab_kind;

/* tokenizer.ggml.token_type values as stored in GGUF files. */
enum {
    FL_TOKTYPE_NORMAL = 1,
    FL_TOKTYPE_UNKNOWN = 2,
    FL_TOKTYPE_CONTROL = 3,
    FL_TOKTYPE_USER_DEFINED = 4,
    FL_TOKTYPE_UNUSED = 5,
    FL_TOKTYPE_BYTE = 6,
};

/* Per-token attribute bits derived from the type and a few well-known token texts. */
enum {
    FL_ATTR_NORMAL = 1u << 0,
    FL_ATTR_UNKNOWN = 1u << 1,
    FL_ATTR_CONTROL = 1u << 2,
    FL_ATTR_USER_DEFINED = 1u << 3,
    FL_ATTR_UNUSED = 1u << 4,
    FL_ATTR_BYTE = 1u << 5,
    FL_ATTR_EOG = 1u << 6,
    FL_ATTR_RSTRIP = 1u << 7, /* whitespace after the token's text is dropped when parsing */
};

typedef struct fl_token {
    const char *text; /* NUL-terminated, inside fluid_vocab.text_pool */
    uint32_t len;
    float score;
    uint32_t attr;
} fl_token;

/* String -> id table (open addressing). Ids may go beyond the vocabulary: the BPE tables
 * intern merge parts that are not tokens themselves. */
typedef struct fl_str_table {
    const char **strs; /* the interned strings, by id */
    uint32_t *lens;
    int32_t n, cap;
    int32_t *slots; /* id or -1 */
    uint32_t mask;
} fl_str_table;

/* (left id, right id) -> merge rank and merged id. */
typedef struct fl_merge {
    uint64_t key;
    int32_t rank;
    int32_t result;
} fl_merge;

typedef struct fl_merge_table {
    fl_merge *slots; /* key == UINT64_MAX marks an empty slot */
    uint32_t mask;
} fl_merge_table;

/* Pre-tokenizer (tokenizer.ggml.pre): a chain of regexes applied one after the other; each
 * splits every piece the previous ones produced into matches and the text between them. */
typedef struct fl_pretok fl_pretok;

struct fluid_vocab {
    fl_vocab_kind kind;
    int32_t n_tokens;
    fl_token *tokens;
    char *text_pool;
    fl_str_table table; /* token texts (ids < n_tokens), then interned merge parts */

    /* BPE */
    fl_merge_table merges;
    fl_pretok *pretok;
    bool byte_encode;         /* GPT-2 byte<->unicode mapping (false for gemma4) */
    bool ignore_merges;       /* a pre-token that is a whole token is taken as it is */
    bool escape_whitespaces;  /* ' ' -> U+2581 before tokenizing (gemma4) */
    bool newline_runs_whole;  /* gemma4: a run of newlines that is a token is taken whole */
    int32_t byte_symbol[256]; /* byte-level BPE: id of the one-character symbol for each byte */
    int32_t byte_token[256];  /* <0xXX> byte tokens (SPM, gemma4), -1 when missing */

    /* SPM / WPM */
    bool add_space_prefix;
    bool spm_newline_alone; /* no token longer than one character holds a newline */
    bool wpm_lowercase;
    int32_t max_token_len;

    /* special tokens */
    int32_t bos, eos, eot, eom, unk, sep, pad;
    bool add_bos, add_eos, add_sep;
    /* control/user-defined/unknown tokens, by first byte then longest first: those starting
     * with byte c are specials[special_start[c] .. special_start[c + 1]) */
    int32_t *specials;
    int32_t n_specials;
    int32_t special_start[257];

    char *chat_template;
    struct fl_arena_block *arena; /* interned strings that are not tokens */
};

/* ---- string and merge tables (vocab.c) ---- */
int32_t fl_str_table_find(const fl_str_table *t, const char *s, size_t len);
uint64_t fl_hash_bytes(const char *s, size_t len);
/* The merge for the pair (a, b), or NULL. */
const fl_merge *fl_merge_find(const fl_merge_table *t, int32_t a, int32_t b);

static inline int32_t fl_vocab_lookup(const fluid_vocab *v, const char *s, size_t len) {
    int32_t id = fl_str_table_find(&v->table, s, len);
    return id < v->n_tokens ? id : -1;
}

/* ---- growable token list ---- */
typedef struct fl_tokens {
    int32_t *ids;
    size_t n, cap;
    bool failed; /* an allocation failed; the list is incomplete */
} fl_tokens;

void fl_tokens_push(fl_tokens *out, int32_t id);

/* ---- UTF-8 (tokenizer_utf8.c) ---- */
/* Length of the UTF-8 sequence starting with byte c (1 for invalid lead bytes). */
static inline size_t fl_utf8_len(unsigned char c) {
    static const uint8_t lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[c >> 4];
}
/* Decodes one well-formed code point at s[0..len); returns its byte length, or 0 when the
 * bytes there are not valid UTF-8 (overlong, surrogate, truncated, out of range). */
size_t fl_utf8_decode(const char *s, size_t len, uint32_t *cp);
/* Writes cp as UTF-8 to out (4 bytes room); returns the length. */
size_t fl_utf8_encode(uint32_t cp, char *out);
/* Byte length of the longest prefix of s that is whole, valid UTF-8. */
size_t fl_utf8_valid_prefix(const char *s, size_t len);
/* A copy of s with every invalid byte replaced by U+FFFD, malloc'd (NULL on failure). */
char *fl_utf8_sanitize(const char *s, size_t len, size_t *out_len);

/* ---- pre-tokenizer (pretokenize.c) ---- */
typedef struct fl_span {
    size_t off, len;
} fl_span;

typedef struct fl_spans {
    fl_span *v;
    size_t n, cap;
} fl_spans;

/* Builds the pre-tokenizer named by tokenizer.ggml.pre ("default" when the file has none). */
fl_pretok *fl_pretok_create(const char *pre, size_t pre_len, fluid_error *err);
/* What the family implies besides its regexes: whole-word look-up before merging (Llama 3
 * and others) and a BOS token by default. */
void fl_pretok_flags(const fl_pretok *p, bool *ignore_merges, bool *add_bos);
void fl_pretok_free(fl_pretok *p);
/* Splits valid UTF-8 text into pieces (appended to out). False on allocation failure. */
bool fl_pretok_split(const fl_pretok *p, const char *text, size_t len, fl_spans *out);

/* ---- merging symbols by priority (tokenizer_merge.c), shared by BPE and SentencePiece ---- */
typedef struct fl_sym {
    int32_t id; /* string-table id of the symbol's text, -1 when unknown */
    int32_t prev, next;
    uint32_t start, len; /* bytes in the word being merged */
} fl_sym;

/* A candidate merge of two neighbours; lower key first, then the leftmost. */
typedef struct fl_pair {
    double key;
    int32_t left, right;
    uint32_t len;   /* the merged length: the pair is stale when the symbols changed */
    int32_t result; /* id of the merged symbol */
} fl_pair;

typedef struct fl_merge_work {
    fl_sym *syms;
    size_t n_syms, cap_syms;
    fl_pair *heap;
    size_t n_heap, cap_heap;
    char *buf; /* the word's text as merged (byte-mapped for byte-level BPE) */
    size_t cap_buf;
    bool failed; /* an allocation failed */
} fl_merge_work;

/* Fills *out with the merge of symbols left and right, or returns false when there is none. */
typedef bool (*fl_pair_fn)(const fluid_vocab *v, const fl_merge_work *w, int32_t left,
                           int32_t right, fl_pair *out);

bool fl_work_reserve(fl_merge_work *w, size_t n_syms, size_t n_bytes);
void fl_work_free(fl_merge_work *w);
/* Appends a symbol covering w->buf[start..start+len). */
void fl_work_add_symbol(fl_merge_work *w, int32_t id, uint32_t start, uint32_t len);
/* Applies merges until none is left; the surviving symbols are linked from index 0. */
void fl_merge_symbols(const fluid_vocab *v, fl_merge_work *w, fl_pair_fn pair);

/* ---- the tokenizers, one raw-text fragment at a time ---- */
void fl_tokenize_bpe(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out);
void fl_tokenize_spm(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out);
void fl_tokenize_wpm(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out);

/* GPT-2's byte-level alphabet: the code point standing for each byte, and back (-1 if cp
 * stands for no byte). */
uint32_t fl_byte_to_cp(uint8_t b);
int fl_cp_to_byte(uint32_t cp);

#endif

/* Text side of Whisper: encoding text into tokens (for prompts and the suppressed-symbol list)
 * with byte-level BPE. The file lists tokens in rank order, so token id = merge rank, and
 * tiktoken's rule applies: repeatedly merge the adjacent pair whose joined bytes have the
 * lowest rank. Text is first split into words with GPT-2's pattern. */
#include "engine/whisper_internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

/* GPT-2's pre-tokenizer: text is cut into words at these matches before BPE */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

bool wh_bpe_init(fluid_whisper *m) {
    int errcode;
    PCRE2_SIZE erroff;
    m->split_re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED,
                                PCRE2_UTF | PCRE2_UCP, &errcode, &erroff, NULL);
    if (!m->split_re) return false;
    size_t size = 1;
    while (size < (size_t)m->n_file_tokens * 2 + 2) size *= 2;
    m->bpe_table = malloc(size * sizeof(int32_t));
    if (!m->bpe_table) return false;
    for (size_t i = 0; i < size; i++) m->bpe_table[i] = -1;
    m->bpe_table_size = size;
    for (int32_t id = 0; id < m->n_file_tokens; id++) {
        if (m->token_len[id] == 0) continue;
        size_t at = hash_bytes(m->token_text[id], m->token_len[id]) & (size - 1);
        while (m->bpe_table[at] >= 0) at = (at + 1) & (size - 1);
        m->bpe_table[at] = id;
    }
    return true;
}

/* The id of the token made of exactly these bytes, or -1. */
static int32_t token_of_bytes(const fluid_whisper *m, const char *s, size_t n) {
    size_t mask = m->bpe_table_size - 1;
    for (size_t at = hash_bytes(s, n) & mask;; at = (at + 1) & mask) {
        int32_t id = m->bpe_table[at];
        if (id < 0) return -1;
        if (m->token_len[id] == n && memcmp(m->token_text[id], s, n) == 0) return id;
    }
}

typedef struct token_buf {
    int32_t *ids;
    size_t n, cap;
} token_buf;

static bool push_token(token_buf *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        int32_t *ids = realloc(b->ids, cap * sizeof(int32_t));
        if (!ids) return false;
        b->ids = ids;
        b->cap = cap;
    }
    b->ids[b->n++] = id;
    return true;
}

/* BPE of one word: `starts` holds part boundaries (n_parts + 1 of them). */
static bool bpe_word(const fluid_whisper *m, const char *w, size_t len, token_buf *out) {
    size_t *starts = malloc((len + 1) * sizeof(size_t));
    if (!starts) return false;
    size_t n_parts = len;
    for (size_t i = 0; i <= len; i++) starts[i] = i;
    while (n_parts > 1) {
        int32_t best = -1;
        size_t best_at = 0;
        for (size_t i = 0; i + 1 < n_parts; i++) {
            int32_t id = token_of_bytes(m, w + starts[i], starts[i + 2] - starts[i]);
            if (id >= 0 && (best < 0 || id < best)) {
                best = id;
                best_at = i;
            }
        }
        if (best < 0) break;
        memmove(&starts[best_at + 1], &starts[best_at + 2],
                (n_parts - best_at - 1) * sizeof(size_t));
        n_parts--;
    }
    bool ok = true;
    for (size_t i = 0; i < n_parts && ok; i++) {
        int32_t id = token_of_bytes(m, w + starts[i], starts[i + 1] - starts[i]);
        if (id >= 0) ok = push_token(out, id);
    }
    free(starts);
    return ok;
}

int32_t *wh_tokenize(const fluid_whisper *m, const char *text, size_t *n_tokens) {
    *n_tokens = 0;
    const pcre2_code *re = m->split_re;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    token_buf out = {malloc(16 * sizeof(int32_t)), 0, 16}; /* non-NULL even for no tokens */
    bool ok = md != NULL && out.ids != NULL;
    size_t len = strlen(text), at = 0;
    while (ok && at < len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, at, 0, md, NULL);
        if (rc < 0) break; /* no further word, or invalid UTF-8: stop there */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= at) break;
        ok = bpe_word(m, text + ov[0], ov[1] - ov[0], &out);
        at = ov[1];
    }
    pcre2_match_data_free(md);
    if (!ok) {
        free(out.ids);
        return NULL;
    }
    *n_tokens = out.n;
    return out.ids;
}

/* Adds the first token of `text` when it is a single token, or always when `any`. */
static bool add_first_token(const fluid_whisper *m, const char *text, bool any, token_buf *out) {
    size_t n;
    int32_t *ids = wh_tokenize(m, text, &n);
    if (!ids) return false;
    bool ok = n == 0 || (n > 1 && !any) || push_token(out, ids[0]);
    free(ids);
    return ok;
}

/* OpenAI's default suppress list: symbols that are not speech, musical notes, and the tokens
 * starting " -" and " '". */
int32_t *wh_non_speech_tokens(const fluid_whisper *m, size_t *n) {
    static const char *const symbols[] = {
        "\"",  "#",  "(",  ")",   "*",   "+",   "/",   ":",  ";",   "<",  "=",  ">",
        "@",   "[",  "\\", "]",   "^",   "_",   "`",   "{",  "|",   "}",  "~",  "「",
        "」",  "『", "』", "<<",  ">>",  "<<<", ">>>", "--", "---", "-(", "-[", "('",
        "(\"", "((", "))", "(((", ")))", "[[",  "]]",  "{{", "}}",  "♪♪", "♪♪♪"};
    static const char *const notes[] = {"♩", "♪", "♫", "♬", "♭", "♮", "♯"};
    token_buf out = {0};
    bool ok = add_first_token(m, " -", true, &out) && add_first_token(m, " '", true, &out);
    for (size_t i = 0; ok && i < sizeof symbols / sizeof symbols[0]; i++) {
        char spaced[32];
        snprintf(spaced, sizeof spaced, " %s", symbols[i]);
        ok = add_first_token(m, symbols[i], false, &out) && add_first_token(m, spaced, false, &out);
    }
    for (size_t i = 0; ok && i < sizeof notes / sizeof notes[0]; i++) {
        char spaced[32];
        snprintf(spaced, sizeof spaced, " %s", notes[i]);
        ok = add_first_token(m, notes[i], true, &out) && add_first_token(m, spaced, true, &out);
    }
    if (!ok) {
        free(out.ids);
        return NULL;
    }
    *n = out.n;
    return out.ids;
}

/* Length of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len = c < 0x80             ? 1
                 : (c & 0xE0) == 0xC0 ? 2
                 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4
                                      : 0;
    if (len == 0 || len > n) return 0;
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

char *wh_utf8_sanitize(const char *s, size_t n) {
    char *out = malloc(3 * n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_char_len((const unsigned char *)s + i, n - i);
        if (len == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        } else {
            memcpy(out + o, s + i, len);
            o += len;
            i += len;
        }
    }
    out[o] = '\0';
    return out;
}

void wh_bpe_free(fluid_whisper *m) {
    pcre2_code_free(m->split_re);
    free(m->bpe_table);
}

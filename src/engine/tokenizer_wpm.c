/* WordPiece (BERT): the text is normalised (lower case, accents removed), split at whitespace
 * with punctuation and CJK characters as words of their own; each word is then covered
 * greedily by the longest tokens, the first one carrying the U+2581 word-start mark. A word
 * that cannot be covered becomes the unknown token. */
#include "engine/vocab_impl.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static bool is_whitespace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
           cp == 0x205f || cp == 0x3000;
}

/* CJK ideographs, as BERT's tokenizer lists them. */
static bool is_cjk(uint32_t cp) {
    return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
           (cp >= 0x20000 && cp <= 0x2a6df) || (cp >= 0x2a700 && cp <= 0x2b73f) ||
           (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b920 && cp <= 0x2ceaf) ||
           (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

static bool is_category(uint32_t cp, char major) {
    return utf8proc_category_string((utf8proc_int32_t)cp)[0] == major;
}

/* Covers "U+2581 word" with the longest tokens from the left. */
static void tokenize_word(const fluid_vocab *v, const char *word, size_t len, fl_tokens *out) {
    size_t first = out->n;
    for (size_t i = 0; i < len;) {
        size_t end = len - i > (size_t)v->max_token_len ? i + (size_t)v->max_token_len : len;
        int32_t id = -1;
        while (end > i && (id = fl_vocab_lookup(v, word + i, end - i)) < 0) end--;
        if (id < 0) {
            out->n = first; /* the word cannot be covered: drop what it produced */
            break;
        }
        fl_tokens_push(out, id);
        i = end;
    }
    if (out->n == first && v->unk >= 0) fl_tokens_push(out, v->unk);
}

typedef struct word_buf {
    char *p;
    size_t n, cap;
} word_buf;

static bool word_put(word_buf *w, uint32_t cp) {
    if (w->n + 4 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        char *p = realloc(w->p, cap);
        if (!p) return false;
        w->p = p;
        w->cap = cap;
    }
    w->n += fl_utf8_encode(cp, w->p + w->n);
    return true;
}

static void word_flush(const fluid_vocab *v, word_buf *w, fl_tokens *out) {
    if (w->n > 3) tokenize_word(v, w->p, w->n, out);
    w->n = 3; /* keep the word-start mark */
}

/* One normalised code point: whitespace ends a word, punctuation and CJK are words alone. */
static bool add_char(const fluid_vocab *v, word_buf *w, uint32_t cp, fl_tokens *out) {
    if (is_whitespace(cp)) {
        word_flush(v, w, out);
        return true;
    }
    if (cp == 0 || cp == 0xfffd || is_category(cp, 'C')) return true;
    if (v->wpm_lowercase && is_category(cp, 'M')) return true; /* accents go with lower case */
    if (v->wpm_lowercase) cp = (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp);
    bool alone = is_category(cp, 'P') || (cp < 0x7f && is_category(cp, 'S')) || is_cjk(cp);
    if (alone) word_flush(v, w, out);
    if (!word_put(w, cp)) return false;
    if (alone) word_flush(v, w, out);
    return true;
}

void fl_tokenize_wpm(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out) {
    word_buf w = {0};
    if (!word_put(&w, 0x2581)) {
        out->failed = true;
        return;
    }
    for (size_t i = 0; i < len && !out->failed;) {
        uint32_t cp = 0xfffd;
        size_t n = fl_utf8_decode(text + i, len - i, &cp);
        i += n ? n : 1;
        utf8proc_int32_t parts[8];
        utf8proc_ssize_t np = 1;
        parts[0] = (utf8proc_int32_t)cp;
        if (v->wpm_lowercase && cp != 0xfffd) {
            int last = 0;
            np = utf8proc_decompose_char((utf8proc_int32_t)cp, parts, 8, UTF8PROC_DECOMPOSE, &last);
            if (np < 1 || np > 8) {
                np = 1;
                parts[0] = (utf8proc_int32_t)cp;
            }
        }
        for (utf8proc_ssize_t k = 0; k < np; k++)
            if (!add_char(v, &w, (uint32_t)parts[k], out)) out->failed = true;
    }
    word_flush(v, &w, out);
    free(w.p);
}

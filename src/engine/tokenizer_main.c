/* fluid_tokenize: special tokens are found in the raw text first (user-defined ones always,
 * control ones only when asked), then each stretch of text between them goes to the
 * vocabulary's tokenizer; BOS/EOS/SEP are added as the vocabulary asks. */
#include "engine/vocab_impl.h"
#include "util/error.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_BYTES ((size_t)1 << 30)

static const char SPACE_MARK[] = "\xe2\x96\x81"; /* U+2581, SentencePiece's visible space */

void fl_tokens_push(fl_tokens *out, int32_t id) {
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 64;
        int32_t *ids = realloc(out->ids, sizeof *ids * cap);
        if (!ids) {
            out->failed = true;
            return;
        }
        out->ids = ids;
        out->cap = cap;
    }
    out->ids[out->n++] = id;
}

/* The special token whose text starts at text[pos], longest first, or -1. */
static int32_t special_at(const fluid_vocab *v, const char *text, size_t len, size_t pos,
                          bool parse_special) {
    unsigned char c = (unsigned char)text[pos];
    for (int32_t i = v->special_start[c]; i < v->special_start[c + 1]; i++) {
        const fl_token *t = &v->tokens[v->specials[i]];
        if (!parse_special && (t->attr & (FL_ATTR_CONTROL | FL_ATTR_UNKNOWN))) continue;
        if (t->len <= len - pos && memcmp(text + pos, t->text, t->len) == 0) return v->specials[i];
    }
    return -1;
}

/* Spaces become U+2581; with `prefix` one more is put in front (SentencePiece's dummy
 * prefix). Returns a malloc'd string. */
static char *escape_spaces(const char *text, size_t len, bool prefix, size_t *out_len) {
    size_t spaces = 0;
    for (size_t i = 0; i < len; i++) spaces += text[i] == ' ';
    char *out = malloc(len + spaces * 2 + (prefix ? 3 : 0) + 1);
    if (!out) return NULL;
    size_t o = 0;
    if (prefix) {
        memcpy(out, SPACE_MARK, 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(out + o, SPACE_MARK, 3);
            o += 3;
        } else {
            out[o++] = text[i];
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Tokenizes one stretch of raw text; after_special tells whether it follows a special token
 * (or starts the text), which is where SentencePiece adds its dummy prefix. */
static void tokenize_fragment(const fluid_vocab *v, const char *text, size_t len,
                              bool after_special, fl_tokens *out) {
    if (len == 0) return;
    if (v->kind == FL_VOCAB_WPM) {
        fl_tokenize_wpm(v, text, len, out);
        return;
    }
    bool spm = v->kind == FL_VOCAB_SPM;
    if (!spm && !v->escape_whitespaces) {
        fl_tokenize_bpe(v, text, len, out);
        return;
    }
    size_t n;
    char *escaped = escape_spaces(text, len, spm && v->add_space_prefix && after_special, &n);
    if (!escaped) {
        out->failed = true;
        return;
    }
    if (spm)
        fl_tokenize_spm(v, escaped, n, out);
    else
        fl_tokenize_bpe(v, escaped, n, out);
    free(escaped);
}

static void tokenize_text(const fluid_vocab *v, const char *text, size_t len, bool parse_special,
                          fl_tokens *out) {
    size_t start = 0, pos = 0;
    bool after_special = true;
    while (pos < len && !out->failed) {
        int32_t id = special_at(v, text, len, pos, parse_special);
        if (id < 0) {
            pos++;
            continue;
        }
        tokenize_fragment(v, text + start, pos - start, after_special, out);
        fl_tokens_push(out, id);
        after_special = true;
        pos += v->tokens[id].len;
        if (v->tokens[id].attr & FL_ATTR_RSTRIP)
            while (pos < len && isspace((unsigned char)text[pos])) pos++;
        start = pos;
    }
    if (!out->failed) tokenize_fragment(v, text + start, len - start, after_special, out);
}

fluid_status fluid_tokenize(const fluid_vocab *v, const char *text, size_t len, bool add_special,
                            bool parse_special, int32_t **tokens, size_t *n_tokens,
                            fluid_error *err) {
    if (!v || !tokens || !n_tokens || (!text && len > 0))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "fluid_tokenize: missing argument");
    *tokens = NULL;
    *n_tokens = 0;
    if (len > MAX_TEXT_BYTES)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "fluid_tokenize: %zu bytes is too long", len);
    fl_tokens out = {0};
    if (add_special && v->add_bos) fl_tokens_push(&out, v->bos);
    tokenize_text(v, text, len, parse_special, &out);
    if (add_special && v->add_eos) fl_tokens_push(&out, v->eos);
    if (add_special && v->add_sep) fl_tokens_push(&out, v->sep);
    if (!out.failed && out.n == 0) { /* an empty result is still a freeable array */
        out.ids = malloc(sizeof *out.ids);
        out.failed = out.ids == NULL;
    }
    if (out.failed) {
        free(out.ids);
        return fl_set_error(err, FLUID_ERR_NOMEM, "fluid_tokenize: out of memory");
    }
    *tokens = out.ids;
    *n_tokens = out.n;
    return FLUID_OK;
}

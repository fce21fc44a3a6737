/* BPE: pre-tokenize, then merge each word's symbols by merge rank. Byte-level vocabularies
 * (GPT-2 style) first map every byte to a printable character; SentencePiece-style BPE
 * (gemma4) merges UTF-8 characters and falls back to <0xXX> byte tokens. */
#include "engine/vocab_impl.h"

#include <stdlib.h>
#include <string.h>

static bool bpe_pair(const fluid_vocab *v, const fl_merge_work *w, int32_t left, int32_t right,
                     fl_pair *out) {
    const fl_sym *l = &w->syms[left], *r = &w->syms[right];
    if (l->id < 0 || r->id < 0) return false;
    const fl_merge *m = fl_merge_find(&v->merges, l->id, r->id);
    if (!m) return false;
    *out = (fl_pair){
        .key = m->rank, .left = left, .right = right, .len = l->len + r->len, .result = m->result};
    return true;
}

/* Lays the word out in w->buf as the symbols' text (mapped bytes, or the UTF-8 as it is)
 * with one symbol per character. */
static bool layout_word(const fluid_vocab *v, fl_merge_work *w, const char *word, size_t len) {
    if (!fl_work_reserve(w, len, len * 2)) return false;
    size_t o = 0;
    if (v->byte_encode) {
        for (size_t i = 0; i < len; i++) {
            uint8_t b = (uint8_t)word[i];
            size_t n = fl_utf8_encode(fl_byte_to_cp(b), w->buf + o);
            fl_work_add_symbol(w, v->byte_symbol[b], (uint32_t)o, (uint32_t)n);
            o += n;
        }
    } else {
        memcpy(w->buf, word, len);
        for (size_t i = 0; i < len;) {
            size_t n = fl_utf8_len((unsigned char)word[i]);
            if (n > len - i) n = len - i;
            int32_t id = fl_str_table_find(&v->table, word + i, n);
            fl_work_add_symbol(w, id, (uint32_t)i, (uint32_t)n);
            i += n;
        }
        o = len;
    }
    w->buf[o] = '\0';
    return true;
}

/* A symbol that is no token becomes one token per byte, where the vocabulary has them. */
static void emit_bytes(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out) {
    for (size_t i = 0; i < len; i++) {
        int32_t id = v->byte_encode ? fl_vocab_lookup(v, text + i, 1)
                                    : v->byte_token[(unsigned char)text[i]];
        if (id >= 0) fl_tokens_push(out, id);
    }
}

static bool all_newlines(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (s[i] != '\n') return false;
    return true;
}

static void tokenize_word(const fluid_vocab *v, fl_merge_work *w, const char *word, size_t len,
                          fl_tokens *out) {
    if (!layout_word(v, w, word, len)) {
        out->failed = true;
        return;
    }
    size_t mapped_len = w->n_syms ? w->syms[w->n_syms - 1].start + w->syms[w->n_syms - 1].len : 0;
    if (v->ignore_merges || (v->newline_runs_whole && all_newlines(word, len))) {
        int32_t whole = fl_vocab_lookup(v, w->buf, mapped_len);
        if (whole >= 0) {
            fl_tokens_push(out, whole);
            return;
        }
    }
    fl_merge_symbols(v, w, bpe_pair);
    if (w->failed) out->failed = true;
    for (int32_t i = 0; i >= 0 && (size_t)i < w->n_syms; i = w->syms[i].next) {
        const fl_sym *s = &w->syms[i];
        if (s->id >= 0 && s->id < v->n_tokens)
            fl_tokens_push(out, s->id);
        else
            emit_bytes(v, w->buf + s->start, s->len, out);
    }
}

void fl_tokenize_bpe(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out) {
    char *clean = NULL;
    if (fl_utf8_valid_prefix(text, len) != len) {
        /* invalid bytes are read as U+FFFD, so that the regexes see valid UTF-8 */
        clean = fl_utf8_sanitize(text, len, &len);
        if (!clean) {
            out->failed = true;
            return;
        }
        text = clean;
    }
    fl_spans words = {0};
    fl_merge_work w = {0};
    if (!fl_pretok_split(v->pretok, text, len, &words)) out->failed = true;
    for (size_t i = 0; i < words.n && !out->failed; i++)
        tokenize_word(v, &w, text + words.v[i].off, words.v[i].len, out);
    fl_work_free(&w);
    free(words.v);
    free(clean);
}

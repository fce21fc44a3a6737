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

/* Words already tokenized in this text (natural text repeats most of its words): the word's
 * bytes in the text and where its tokens are in the output. */
typedef struct cached_word {
    uint64_t hash;
    size_t off; /* in the text */
    uint32_t len, count;
    size_t first; /* index of the word's first token in the output */
} cached_word;

typedef struct word_cache {
    cached_word *slots; /* len 0 = empty */
    size_t mask, used;
} word_cache;

enum { CACHED_WORD_MAX = 64 };

static cached_word *cache_slot(const word_cache *c, const char *text, size_t off, size_t len,
                               uint64_t hash) {
    for (size_t i = hash & c->mask;; i = (i + 1) & c->mask) {
        cached_word *e = &c->slots[i];
        if (e->len == 0 ||
            (e->hash == hash && e->len == len && memcmp(text + e->off, text + off, len) == 0))
            return e;
    }
}

static bool cache_grow(word_cache *c) {
    size_t n = c->slots ? (c->mask + 1) * 2 : 1024;
    cached_word *slots = calloc(n, sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; c->slots && i <= c->mask; i++) {
        const cached_word *e = &c->slots[i];
        if (e->len == 0) continue;
        size_t k = e->hash & (n - 1);
        while (slots[k].len != 0) k = (k + 1) & (n - 1);
        slots[k] = *e;
    }
    free(c->slots);
    c->slots = slots;
    c->mask = n - 1;
    return true;
}

static void tokenize_cached(const fluid_vocab *v, fl_merge_work *w, word_cache *c, const char *text,
                            fl_span word, fl_tokens *out) {
    if (word.len > CACHED_WORD_MAX || (c->used * 2 >= c->mask && !cache_grow(c))) {
        tokenize_word(v, w, text + word.off, word.len, out);
        return;
    }
    uint64_t hash = fl_hash_bytes(text + word.off, word.len);
    cached_word *e = cache_slot(c, text, word.off, word.len, hash);
    if (e->len != 0) {
        for (uint32_t k = 0; k < e->count; k++) fl_tokens_push(out, out->ids[e->first + k]);
        return;
    }
    size_t first = out->n;
    tokenize_word(v, w, text + word.off, word.len, out);
    if (out->failed) return;
    *e = (cached_word){.hash = hash,
                       .off = word.off,
                       .len = (uint32_t)word.len,
                       .count = (uint32_t)(out->n - first),
                       .first = first};
    c->used++;
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
    word_cache cache = {0};
    if (!fl_pretok_split(v->pretok, text, len, &words)) out->failed = true;
    for (size_t i = 0; i < words.n && !out->failed; i++)
        tokenize_cached(v, &w, &cache, text, words.v[i], out);
    free(cache.slots);
    fl_work_free(&w);
    free(words.v);
    free(clean);
}

/* SentencePiece (BPE flavour, as in Llama 1/2, Mistral, Phi-3): neighbouring pieces merge
 * when their concatenation is a token, highest score first; characters that are no token
 * fall back to <0xXX> byte tokens. The caller has already turned spaces into U+2581. */
#include "engine/vocab_impl.h"

#include <string.h>

static bool spm_pair(const fluid_vocab *v, const fl_merge_work *w, int32_t left, int32_t right,
                     fl_pair *out) {
    const fl_sym *l = &w->syms[left], *r = &w->syms[right];
    int32_t id = fl_vocab_lookup(v, w->buf + l->start, l->len + r->len);
    if (id < 0) return false;
    *out = (fl_pair){.key = -(double)v->tokens[id].score,
                     .left = left,
                     .right = right,
                     .len = l->len + r->len,
                     .result = id};
    return true;
}

static void emit_bytes(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out) {
    for (size_t i = 0; i < len; i++) {
        int32_t id = v->byte_token[(unsigned char)text[i]];
        if (id < 0) id = fl_vocab_lookup(v, text + i, 1);
        if (id < 0) id = v->unk;
        if (id >= 0) fl_tokens_push(out, id);
    }
}

/* Tokenizes one piece with w's buffers (kept for the next piece). */
static void tokenize_piece(const fluid_vocab *v, fl_merge_work *w, const char *text, size_t len,
                           fl_tokens *out) {
    if (!fl_work_reserve(w, len, len)) {
        out->failed = true;
        return;
    }
    memcpy(w->buf, text, len);
    for (size_t i = 0; i < len;) {
        size_t n = fl_utf8_len((unsigned char)text[i]);
        if (n > len - i) n = len - i;
        fl_work_add_symbol(w, fl_vocab_lookup(v, text + i, n), (uint32_t)i, (uint32_t)n);
        i += n;
    }
    fl_merge_symbols(v, w, spm_pair);
    if (w->failed) out->failed = true;
    for (int32_t i = 0; i >= 0 && (size_t)i < w->n_syms; i = w->syms[i].next) {
        const fl_sym *s = &w->syms[i];
        if (s->id >= 0)
            fl_tokens_push(out, s->id);
        else
            emit_bytes(v, w->buf + s->start, s->len, out);
    }
}

void fl_tokenize_spm(const fluid_vocab *v, const char *text, size_t len, fl_tokens *out) {
    fl_merge_work w = {0};
    if (!v->spm_newline_alone) {
        tokenize_piece(v, &w, text, len, out);
        fl_work_free(&w);
        return;
    }
    /* No token holds a newline with anything else, so no merge crosses one: the lines merge
     * independently (the same result, with much smaller queues on long texts). */
    while (len > 0 && !out->failed) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t)(nl - text) : len;
        if (n == 0) n = 1;
        tokenize_piece(v, &w, text, n, out);
        text += n;
        len -= n;
    }
    fl_work_free(&w);
}

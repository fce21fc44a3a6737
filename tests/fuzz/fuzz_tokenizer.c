/* The tokenizer on arbitrary bytes and the detokenizer on arbitrary token ids, over every
 * vocabulary of the harness (BPE, SentencePiece, WordPiece; see fz_vocab).
 * Input: a byte choosing the vocabulary, a byte of flags, the text. The text's bytes are also
 * read as little-endian token ids (any value, out of range included) for the detokenizer. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { ADD_SPECIAL = 1, PARSE_SPECIAL = 2, RENDER_SPECIAL = 4 };

/* Streams ids through a detokenizer: everything it gives back is whole UTF-8. */
static void detokenize(const fluid_vocab *v, const int32_t *ids, size_t n, bool render) {
    fluid_detok *d = fluid_detok_create(v, render);
    fz_check(d != NULL, "a detokenizer");
    size_t len;
    for (size_t i = 0; i < n; i++) {
        const char *text = fluid_detok_push(d, ids[i], &len);
        fz_check(fz_utf8_valid(text, len), "detokenized text is whole UTF-8");
        char small[3];
        size_t full = fluid_token_bytes(v, ids[i], render, small, sizeof small);
        char *all = malloc(full + 1);
        fz_check(all != NULL, "memory for a token");
        fz_check(fluid_token_bytes(v, ids[i], render, all, full + 1) == full,
                 "a token's size does not depend on the buffer");
        fz_check(memcmp(small, all, full < sizeof small ? full : sizeof small) == 0,
                 "a short buffer gets the token's first bytes");
        free(all);
    }
    const char *rest = fluid_detok_flush(d, &len);
    fz_check(fz_utf8_valid(rest, len), "flushed text is whole UTF-8");
    fluid_detok_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_reader in = {data, size};
    int count = fz_vocab_count();
    const fluid_vocab *v = fz_vocab(fz_byte(&in) % count);
    uint8_t flags = fz_byte(&in);
    if (v == NULL) return 0;
    const char *text = (const char *)in.p;
    int32_t *tokens = NULL;
    size_t n = 0;
    fluid_status st = fluid_tokenize(v, text, in.left, flags & ADD_SPECIAL, flags & PARSE_SPECIAL,
                                     &tokens, &n, NULL);
    if (st == FLUID_OK) {
        int32_t n_vocab = fluid_vocab_size(v);
        for (size_t i = 0; i < n; i++)
            fz_check(tokens[i] >= 0 && tokens[i] < n_vocab, "token ids lie in the vocabulary");
        detokenize(v, tokens, n, flags & RENDER_SPECIAL);
        free(tokens);
    }
    size_t n_ids = in.left / sizeof(int32_t);
    int32_t *ids = malloc((n_ids > 0 ? n_ids : 1) * sizeof *ids);
    fz_check(ids != NULL, "memory for ids");
    if (n_ids > 0) memcpy(ids, in.p, n_ids * sizeof *ids);
    detokenize(v, ids, n_ids, flags & RENDER_SPECIAL);
    free(ids);
    return 0;
}

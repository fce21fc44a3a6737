/* The built-in vocabulary: GPT-2 style byte-level BPE. Its 256 byte tokens use GPT-2's
 * byte-to-character mapping, its merges come from running BPE on the short English text
 * below, and three ChatML control tokens follow. */
#include "fluid-synth/vocab.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MERGES 400
#define MAX_TOKENS (256 + MAX_MERGES)
#define MAX_TOKEN_BYTES 64 /* longest token string (UTF-8) the training may build */
#define MAX_WORDS 1024
#define MAX_WORD_SYMBOLS 32

static const char TRAINING_TEXT[] =
    "The harbour town wakes early. Before the sun is over the hills, the fishing boats are "
    "already coming back, and the people on the quay are talking about the weather, the price "
    "of fish and the new bridge that the council wants to build over the river. The bridge has "
    "been on the table for years. Some say that it will bring more visitors to the town, and "
    "with them more work; others think that the town is good as it is, and that the old ferry "
    "is part of what makes it what it is.\n"
    "In the market, the bakers open their shops first. The smell of fresh bread fills the "
    "streets, and the children on their way to school stop at the window to look at the cakes. "
    "The teacher, who has been at the school for thirty years, knows every family in the town. "
    "She tells the children that the most important thing they can learn is to ask good "
    "questions, and that the answers will follow.\n"
    "At noon the town is quiet. The workers eat their lunch in the sun, the old men play cards "
    "in the shade of the church, and the cats sleep on the warm stones of the wall. In the "
    "afternoon the wind turns, the clouds come in from the sea, and the first drops of rain "
    "begin to fall. Nobody is surprised: the weather here changes three times a day, and "
    "everyone carries a coat, even in summer.\n"
    "In the evening the lights come on along the water. The restaurants fill with people, the "
    "music starts in the square, and the boats rock gently at their moorings. Tomorrow the "
    "fishermen will go out again before the sun rises, and the town will wake early, as it "
    "always has, and as it always will.\n"
    "What is the time? It is ten past seven. How many boats are in the harbour? There are "
    "twelve boats, four of them painted blue and eight painted white. Where is the station? "
    "Go straight on, turn left at the church, and you will find it on your right, next to the "
    "post office. Thank you very much! You are welcome, and have a good day.\n"
    "The library opens at nine and closes at five, except on Sundays, when it is closed all "
    "day. Inside there are thousands of books, some of them older than the town itself. The "
    "librarian likes to say that every book is a door, and that reading is the cheapest way to "
    "travel. On rainy days the reading room is full: students working on their homework, "
    "writers looking for ideas, and retired sailors reading about the places they have seen.\n"
    "Every summer the town holds a festival. For three days the streets are closed to cars, "
    "and there are concerts, games and dances from morning until late at night. People come "
    "from all over the country to see the boat race, in which the fishermen row their old "
    "wooden boats from the harbour to the lighthouse and back. The winner gets a silver cup "
    "and, more importantly, the right to tell the story of the race for the rest of the year.\n";

static const char *const SPECIAL_TOKENS[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
enum { N_SPECIAL = 3, TOKEN_NORMAL = 1, TOKEN_CONTROL = 3 };

/* ChatML, with the assistant turn opened when a generation prompt is asked for. */
static const char CHAT_TEMPLATE[] =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

typedef struct word {
    int sym[MAX_WORD_SYMBOLS];
    int n;
    int count;
} word;

typedef struct bpe {
    char tokens[MAX_TOKENS + N_SPECIAL][MAX_TOKEN_BYTES + 1];
    int n_tokens;
    char merges[MAX_MERGES][2 * MAX_TOKEN_BYTES + 2];
    int n_merges;
    word words[MAX_WORDS];
    int n_words;
    int pair_count[MAX_TOKENS][MAX_TOKENS];
} bpe;

/* GPT-2's printable stand-in for a byte: printable Latin-1 bytes stand for themselves, the
 * others map, in order, to U+0100 onwards. Written as UTF-8 into out (3 bytes room). */
static void byte_token(int b, char *out) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    int cp = b;
    if (!printable) {
        int rank = 0; /* how many non-printable bytes come before b */
        for (int x = 0; x < b; x++) {
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174))) rank++;
        }
        cp = 256 + rank;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = '\0';
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = '\0';
    }
}

static bool is_letter(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void add_word(bpe *b, const char *s, int len) {
    for (int i = 0; i < b->n_words; i++) {
        word *w = &b->words[i];
        bool same = w->n == len;
        for (int j = 0; same && j < len; j++) same = w->sym[j] == (uint8_t)s[j];
        if (same) {
            w->count++;
            return;
        }
    }
    if (b->n_words == MAX_WORDS || len > MAX_WORD_SYMBOLS) return;
    word *w = &b->words[b->n_words++];
    for (int j = 0; j < len; j++) w->sym[j] = (uint8_t)s[j];
    w->n = len;
    w->count = 1;
}

/* Splits the text like a GPT-2 pre-tokenizer would, roughly: an optional space followed by
 * letters is one word; any other character stands alone. */
static void split_words(bpe *b) {
    const char *t = TRAINING_TEXT;
    for (size_t i = 0; t[i] != '\0';) {
        size_t start = i;
        if (t[i] == ' ' && is_letter(t[i + 1])) i++;
        if (is_letter(t[i])) {
            while (is_letter(t[i])) i++;
        } else {
            i++;
        }
        add_word(b, t + start, (int)(i - start));
    }
}

/* The most frequent adjacent pair (ties: lowest ids), or false when none occurs twice. Only
 * the pairs present are visited, and their counts are reset on the way out. */
static bool best_pair(bpe *b, int *left, int *right) {
    for (int i = 0; i < b->n_words; i++) {
        const word *w = &b->words[i];
        for (int j = 0; j + 1 < w->n; j++) b->pair_count[w->sym[j]][w->sym[j + 1]] += w->count;
    }
    int best = 1;
    *left = *right = -1;
    for (int i = 0; i < b->n_words; i++) {
        const word *w = &b->words[i];
        for (int j = 0; j + 1 < w->n; j++) {
            int x = w->sym[j], y = w->sym[j + 1], c = b->pair_count[x][y];
            if (c > best || (c == best && best > 1 && (x < *left || (x == *left && y < *right)))) {
                best = c;
                *left = x;
                *right = y;
            }
        }
    }
    for (int i = 0; i < b->n_words; i++) {
        const word *w = &b->words[i];
        for (int j = 0; j + 1 < w->n; j++) b->pair_count[w->sym[j]][w->sym[j + 1]] = 0;
    }
    return best > 1;
}

static void apply_merge(bpe *b, int left, int right, int merged) {
    for (int i = 0; i < b->n_words; i++) {
        word *w = &b->words[i];
        int out = 0;
        for (int j = 0; j < w->n; j++) {
            if (j + 1 < w->n && w->sym[j] == left && w->sym[j + 1] == right) {
                w->sym[out++] = merged;
                j++;
            } else {
                w->sym[out++] = w->sym[j];
            }
        }
        w->n = out;
    }
}

/* dst = a + sep + c; the caller checked that it fits. */
static void join(char *dst, const char *a, const char *sep, const char *c) {
    size_t na = strlen(a), ns = strlen(sep), nc = strlen(c);
    memcpy(dst, a, na);
    memcpy(dst + na, sep, ns);
    memcpy(dst + na + ns, c, nc + 1);
}

static void train(bpe *b) {
    for (int i = 0; i < 256; i++) byte_token(i, b->tokens[i]);
    b->n_tokens = 256;
    split_words(b);
    int left = -1, right = -1;
    while (b->n_merges < MAX_MERGES && best_pair(b, &left, &right)) {
        if (strlen(b->tokens[left]) + strlen(b->tokens[right]) > MAX_TOKEN_BYTES) break;
        join(b->tokens[b->n_tokens], b->tokens[left], "", b->tokens[right]);
        join(b->merges[b->n_merges], b->tokens[left], " ", b->tokens[right]);
        apply_merge(b, left, right, b->n_tokens);
        b->n_tokens++;
        b->n_merges++;
    }
    for (int i = 0; i < N_SPECIAL; i++) {
        snprintf(b->tokens[b->n_tokens++], sizeof b->tokens[0], "%s", SPECIAL_TOKENS[i]);
    }
}

static bool write_builtin(gguf_writer *w, const bpe *b) {
    const char *tokens[MAX_TOKENS + N_SPECIAL];
    int32_t types[MAX_TOKENS + N_SPECIAL];
    const char *merges[MAX_MERGES];
    int first_special = b->n_tokens - N_SPECIAL;
    for (int i = 0; i < b->n_tokens; i++) {
        tokens[i] = b->tokens[i];
        types[i] = i >= first_special ? TOKEN_CONTROL : TOKEN_NORMAL;
    }
    for (int i = 0; i < b->n_merges; i++) merges[i] = b->merges[i];
    uint32_t endoftext = (uint32_t)first_special, im_end = (uint32_t)first_special + 2;
    return gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2") &&
           gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2") &&
           gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tokens, (uint64_t)b->n_tokens) &&
           gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types,
                               (uint64_t)b->n_tokens) &&
           gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (uint64_t)b->n_merges) &&
           gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", endoftext) &&
           gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", im_end) &&
           gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", endoftext) &&
           gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false) &&
           gguf_writer_set_str(w, "tokenizer.chat_template", CHAT_TEMPLATE);
}

int64_t synth_vocab_builtin(gguf_writer *w, char *err, size_t err_size) {
    bpe *b = calloc(1, sizeof *b);
    if (b == NULL) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    train(b);
    int64_t n = b->n_tokens;
    if (!write_builtin(w, b)) {
        snprintf(err, err_size, "out of memory while adding the vocabulary");
        n = -1;
    }
    free(b);
    return n;
}

static bool starts_with(gguf_str s, const char *prefix) {
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

int64_t synth_vocab_copy(gguf_writer *w, const char *path, char *err, size_t err_size) {
    char inner[512];
    gguf_file *f = gguf_open(path, inner, sizeof inner);
    if (f == NULL) {
        snprintf(err, err_size, "--vocab: %s", inner);
        return -1;
    }
    gguf_type type;
    uint64_t n_tokens = 0;
    int64_t result = -1;
    if (!gguf_get_arr(f, "tokenizer.ggml.tokens", &type, &n_tokens, NULL) ||
        type != GGUF_TYPE_STRING || n_tokens == 0 || n_tokens > INT32_MAX) {
        snprintf(err, err_size, "--vocab %s: no usable tokenizer.ggml.tokens array", path);
    } else {
        result = (int64_t)n_tokens;
        for (int64_t i = 0; i < gguf_n_kv(f) && result >= 0; i++) {
            if (!starts_with(gguf_kv_key(f, i), "tokenizer.")) continue;
            if (!gguf_writer_copy_kv_index(w, f, i)) {
                snprintf(err, err_size, "--vocab %s: cannot copy key %lld", path, (long long)i);
                result = -1;
            }
        }
    }
    gguf_close(f);
    return result;
}

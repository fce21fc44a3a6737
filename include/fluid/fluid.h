/* libfluid: a small inference engine for GGUF language models and Whisper speech models.
 *
 * The API is made of opaque handles and plain functions. Calls that can fail take a
 * fluid_error* (may be NULL) that receives a code and a readable message. Nothing here starts
 * threads of its own except a fluid_pool, which the caller creates once and passes to every
 * call that computes; a pool can be shared by several models (calls are serialised on it). */
#ifndef FLUID_FLUID_H
#define FLUID_FLUID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------------------------ */

typedef enum fluid_status {
    FLUID_OK = 0,
    FLUID_ERR_IO,           /* a file could not be opened or read */
    FLUID_ERR_FORMAT,       /* a file or input is malformed, truncated or inconsistent */
    FLUID_ERR_UNSUPPORTED,  /* valid, but not something this engine runs */
    FLUID_ERR_NOMEM,        /* an allocation failed */
    FLUID_ERR_ARGUMENT,     /* a caller passed an invalid value */
    FLUID_ERR_CONTEXT_FULL, /* the session has no room for more tokens */
    FLUID_ERR_CANCELLED,    /* the caller asked to stop */
    FLUID_ERR_LIMIT,        /* the input exceeds a limit the caller set */
} fluid_status;

typedef struct fluid_error {
    fluid_status code;
    char message[512];
} fluid_error;

const char *fluid_version(void);

/* ---- compute pool ------------------------------------------------------------------------ */

typedef struct fluid_pool fluid_pool;

/* A pool of n_threads threads in all (the caller's included); 0 = one per online core. */
fluid_pool *fluid_pool_create(int n_threads);
void fluid_pool_free(fluid_pool *pool);

/* ---- vocabulary, tokenizer, detokenizer -------------------------------------------------- */

typedef struct fluid_vocab fluid_vocab;

/* Reads the tokenizer of a GGUF file (tokenizer.ggml.*); works on vocabulary-only files. */
fluid_vocab *fluid_vocab_load(const char *gguf_path, fluid_error *err);
void fluid_vocab_free(fluid_vocab *vocab);

int32_t fluid_vocab_size(const fluid_vocab *vocab);
int32_t fluid_token_bos(const fluid_vocab *vocab); /* -1 when the vocabulary has none */
int32_t fluid_token_eos(const fluid_vocab *vocab);
bool fluid_token_is_eog(const fluid_vocab *vocab, int32_t token); /* EOS, EOT, <|im_end|>, ... */

/* Tokenizes len bytes of UTF-8 text. add_special: add BOS/EOS as the vocabulary asks;
 * parse_special: recognise special tokens' text (e.g. "<|im_start|>") as those tokens.
 * On success *tokens is a malloc'd array of *n_tokens ids (free() it). */
fluid_status fluid_tokenize(const fluid_vocab *vocab, const char *text, size_t len,
                            bool add_special, bool parse_special, int32_t **tokens,
                            size_t *n_tokens, fluid_error *err);

/* The bytes a token stands for (a token may hold part of a UTF-8 character). Control tokens
 * give their text only when render_special. Returns the byte count, which may exceed size (then
 * only size bytes were written). */
size_t fluid_token_bytes(const fluid_vocab *vocab, int32_t token, bool render_special, char *buf,
                         size_t size);

/* Streaming detokenizer: turns generated tokens into text that is always whole UTF-8; bytes of a
 * character split across tokens are held back until the character is complete. */
typedef struct fluid_detok fluid_detok;

fluid_detok *fluid_detok_create(const fluid_vocab *vocab, bool render_special);
/* Adds a token; returns the text completed by it (possibly empty), valid until the next call. */
const char *fluid_detok_push(fluid_detok *d, int32_t token, size_t *len);
/* Returns what is still held back (incomplete sequences become U+FFFD) and resets. */
const char *fluid_detok_flush(fluid_detok *d, size_t *len);
void fluid_detok_free(fluid_detok *d);

/* ---- chat templates ---------------------------------------------------------------------- */

typedef struct fluid_chat_message {
    const char *role; /* "system", "user", "assistant" ("developer" is treated as "system") */
    const char *content;
} fluid_chat_message;

/* Formats messages as the model family's chat template expects (detected from
 * tokenizer.chat_template: ChatML/Qwen, Llama 3, Phi-3, Mistral, Gemma, Gemma 4; ChatML when the
 * vocabulary has no template or an unknown one), with the assistant's generation prompt
 * appended when asked. Families without a system turn (Gemma 1-3, Mistral before v7, the
 * original Phi-3) fold system text into a user turn, where their templates put it.
 * BOS rule: tokenize the result with add_special = true and parse_special = true. The text
 * starts with the BOS token's text only when the family's template starts with BOS and the
 * vocabulary does not add BOS itself, so the tokens start with exactly one BOS whenever either
 * asks for it.
 * Returns a malloc'd string, or NULL with err set (e.g. an unsupported role). */
char *fluid_chat_format(const fluid_vocab *vocab, const fluid_chat_message *messages, size_t n,
                        bool add_generation_prompt, fluid_error *err);

/* ---- language models --------------------------------------------------------------------- */

typedef struct fluid_model fluid_model;

typedef struct fluid_model_info {
    const char *arch;      /* "llama", "qwen2", "qwen3", "phi3", ... */
    const char *type_name; /* the dominant weight type, e.g. "f16", "q4_k" */
    int32_t n_vocab;       /* rows of token_embd/output = the logits' width; may exceed the
                            * vocabulary's tokens (fluid_vocab_size) when the rows are padded */
    int32_t n_ctx_train;
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    uint64_t n_params;
    uint64_t file_bytes;
} fluid_model_info;

/* Loads a GGUF model (mapped, not copied). A truncated or corrupt file fails with a message. */
fluid_model *fluid_model_load(const char *path, fluid_error *err);
void fluid_model_free(fluid_model *model);
/* Whether the model's file shrank on disk while it was mapped: its weights then read as zeros
 * (the process survives the fault) and the model must be unloaded; a new load sees the file as
 * it now is. */
bool fluid_model_file_damaged(const fluid_model *model);
const fluid_vocab *fluid_model_vocab(const fluid_model *model);
void fluid_model_get_info(const fluid_model *model, fluid_model_info *info);
/* The memory a session of n_ctx tokens (0 = the default of fluid_session_create) of the model in
 * `path` holds for its KV cache (fluid_session_bytes), from the file's metadata alone: for
 * budgeting memory before a load. */
fluid_status fluid_model_context_bytes(const char *path, int32_t n_ctx, uint64_t *bytes,
                                       fluid_error *err);

/* A session is one sequence being decoded: its KV cache and position. Sessions of one model
 * may be used from different threads, each session from one thread at a time. */
typedef struct fluid_session fluid_session;

/* n_ctx: the most tokens the session can hold; 0 = the model's training context, capped at
 * 4096. */
fluid_session *fluid_session_create(fluid_model *model, int32_t n_ctx, fluid_error *err);
void fluid_session_free(fluid_session *s);
int32_t fluid_session_n_ctx(const fluid_session *s);
int32_t fluid_session_n_past(const fluid_session *s);
size_t fluid_session_bytes(const fluid_session *s); /* memory held by the KV cache */
/* Forgets every position from n_past on (keeps a shared prompt prefix). */
void fluid_session_rewind(fluid_session *s, int32_t n_past);
/* When on, decode keeps the logits of every token it evaluates, not only the last one. */
void fluid_session_keep_all_logits(fluid_session *s, bool on);

/* Evaluates n tokens after those already in the cache (a prompt in one batch, or one generated
 * token). Fails with FLUID_ERR_CONTEXT_FULL when they do not fit. */
fluid_status fluid_session_decode(fluid_session *s, const int32_t *tokens, int32_t n,
                                  fluid_pool *pool, fluid_error *err);
/* Logits (n_vocab floats) of token i of the last decode call; i = -1 is the last token. Other
 * positions are available only when keep_all_logits was on. NULL when not available. */
const float *fluid_session_logits(const fluid_session *s, int32_t i);

/* ---- sampling ---------------------------------------------------------------------------- */

/* Each step: logit bias -> repetition, frequency and presence penalties -> (greedy, or)
 * temperature -> top-k -> top-p -> min-p -> a draw from the seeded generator. */

typedef struct fluid_logit_bias {
    int32_t token;
    float bias; /* added to the logit; -100 or less bans the token (as OpenAI documents) */
} fluid_logit_bias;

/* seed value that asks for a fresh, unpredictable seed */
#define FLUID_SEED_RANDOM UINT64_MAX

typedef struct fluid_sampling {
    float temperature;       /* 0 (or below 1e-4) = greedy: the best logit, ties to the lower id */
    int32_t top_k;           /* 0 = off */
    float top_p;             /* 1 = off; keeps the smallest set of best tokens reaching top_p */
    float min_p;             /* 0 = off; drops tokens less likely than min_p * the best one */
    float repeat_penalty;    /* 1 = off; divides positive, multiplies negative logits of recent
                                tokens */
    int32_t repeat_last_n;   /* how many recent tokens the penalties look at; -1 = all, 0 = none */
    float presence_penalty;  /* OpenAI semantics: subtracted once per token present */
    float frequency_penalty; /* subtracted per occurrence */
    const fluid_logit_bias *logit_bias; /* copied by fluid_sampler_create */
    size_t n_logit_bias;
    uint64_t seed; /* the same seed, parameters and logits give the same tokens */
} fluid_sampling;

/* Everything off (temperature 1, top_k 0, top_p 1, min_p 0, no penalties, repeat_last_n 64),
 * seed FLUID_SEED_RANDOM: plain sampling from the model's distribution, as OpenAI's defaults. */
void fluid_sampling_defaults(fluid_sampling *params);

typedef struct fluid_sampler fluid_sampler;

/* Fails with FLUID_ERR_ARGUMENT for out-of-range parameters or logit_bias tokens. */
fluid_sampler *fluid_sampler_create(const fluid_sampling *params, int32_t n_vocab,
                                    fluid_error *err);
void fluid_sampler_free(fluid_sampler *s);
/* Records a token of the sequence (prompt or generated) for the penalties. */
void fluid_sampler_accept(fluid_sampler *s, int32_t token);
/* Picks the next token from raw logits (n_vocab floats, not modified). Does not record it:
 * call fluid_sampler_accept with the token that is kept. */
int32_t fluid_sampler_sample(fluid_sampler *s, const float *logits);

typedef struct fluid_token_logprob {
    int32_t token;
    float logprob;
} fluid_token_logprob;

/* Log-probabilities under the model's own distribution (log-softmax of the raw logits, summed in
 * double): returns the log-probability of `token` (-INFINITY when out of range) and writes the
 * min(k, n_vocab) most likely tokens, most likely first (ties: lower id first), to top. */
float fluid_logprobs(const float *logits, int32_t n_vocab, int32_t token, int32_t k,
                     fluid_token_logprob *top);

#ifdef __cplusplus
}
#endif

#endif

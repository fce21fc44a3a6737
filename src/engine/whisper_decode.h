/* Decoding one 30 s window (after its encoder pass): greedy, sampled (best of n) or beam
 * search, with OpenAI Whisper's logit filters. */
#ifndef FLUID_ENGINE_WHISPER_DECODE_H
#define FLUID_ENGINE_WHISPER_DECODE_H

#include "engine/whisper_internal.h"

typedef struct wh_window_opts {
    const int32_t *prompt; /* previous-context tokens (without <|startofprev|>), or NULL */
    size_t n_prompt;
    int32_t lang_id; /* -1 for English-only models */
    bool translate;
    bool timestamps;
    float temperature;
    int32_t beam_size; /* used at temperature 0 when > 1 */
    int32_t best_of;   /* used at temperature > 0 */
    int32_t max_tokens;
    uint64_t seed;
    const wh_rules *rules;
    fluid_whisper_abort_cb should_abort;
    void *should_abort_user;
} wh_window_opts;

typedef struct wh_window_result {
    int32_t *tokens; /* sampled tokens, end-of-text excluded (malloc'd) */
    float *logprobs; /* log-probability of each */
    size_t n_tokens;
    double sum_logprob;
    float avg_logprob;
    float no_speech_prob;
    float temperature;
    float compression_ratio;
    char *text; /* the text tokens joined (malloc'd) */
} wh_window_result;

/* The state must hold at least max(beam_size, best_of) sequences and the window's encoder pass. */
fluid_status wh_decode_window(wh_state *st, const fluid_whisper *m, const wh_window_opts *o,
                              fl_pool *pool, wh_window_result *out, fluid_error *err);
void wh_window_result_free(wh_window_result *r);

/* Joins the text of the tokens below <|endoftext|> (malloc'd; NULL without memory). */
char *wh_tokens_text(const fluid_whisper *m, const int32_t *tokens, size_t n);

#endif

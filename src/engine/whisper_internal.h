/* Whisper inside libfluid: the loaded model, its special tokens, the forward passes and the
 * decoding helpers shared by whisper_*.c. */
#ifndef FLUID_ENGINE_WHISPER_INTERNAL_H
#define FLUID_ENGINE_WHISPER_INTERNAL_H

#include "engine/kernels.h"
#include "fluid/whisper.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WH_N_FFT 400
#define WH_HOP 160
#define WH_CHUNK_SECONDS 30
#define WH_CHUNK_SAMPLES (WH_CHUNK_SECONDS * FLUID_WHISPER_SAMPLE_RATE)
#define WH_CHUNK_FRAMES (WH_CHUNK_SAMPLES / WH_HOP) /* 3000 mel frames per window */
#define WH_TIME_PRECISION 0.02                      /* seconds per timestamp token */
#define WH_N_TIMESTAMPS 1501                        /* <|0.00|> ... <|30.00|> */

typedef struct wh_hparams {
    int32_t n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer;
    int32_t n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype;
} wh_hparams;

/* Special token ids, derived from n_vocab as the file format implies. */
typedef struct wh_specials {
    int32_t eot, sot, translate, transcribe, solm, prev, nospeech, notimestamps, beg;
    int32_t lang_begin; /* <|en|> = lang_begin + 0 */
    int32_t n_lang;     /* language tokens present (99, or 100 for large-v3) */
    bool multilingual;
} wh_specials;

/* Derives the specials from n_vocab; false when n_vocab is not a Whisper vocabulary size. */
bool wh_specials_from_vocab(int32_t n_vocab, wh_specials *sp);

/* Attention weights: q/k/v/o projections (k has no bias). */
typedef struct wh_attn {
    fl_tensor q, k, v, o;
    const float *q_b, *v_b, *o_b;
} wh_attn;

typedef struct wh_norm {
    const float *w, *b;
} wh_norm;

typedef struct wh_block {
    wh_norm attn_ln;
    wh_attn attn;
    wh_norm cross_ln; /* decoder only */
    wh_attn cross;    /* decoder only */
    wh_norm mlp_ln;
    fl_tensor mlp0, mlp2;
    const float *mlp0_b, *mlp2_b;
} wh_block;

struct fluid_whisper {
    wh_hparams hp;
    wh_specials sp;
    fl_type wtype; /* the dominant matrix type */
    /* the file, mapped */
    const uint8_t *map;
    size_t map_bytes;
    int map_guard;       /* slot in util/mapguard while mapped */
    size_t header_bytes; /* magic, hparams, mel filters and vocabulary */
    void *weights;       /* every tensor, copied to aligned memory (the map is then released) */
    /* mel filters: n_mels rows of n_fft_bins floats (points into the map or owned) */
    int32_t n_fft_bins;
    const float *mel_filters;
    float *mel_filters_owned; /* when the mapped floats are not aligned */
    /* vocabulary: n_vocab entries; texts of the file tokens, then generated special names */
    char **token_text;
    uint32_t *token_len;
    int32_t n_file_tokens;
    /* encoder */
    fl_tensor conv1, conv2; /* viewed as matrices [n_out rows, 3 * n_in cols] */
    const float *conv1_b, *conv2_b;
    const float *enc_pos; /* n_audio_ctx x n_audio_state */
    wh_block *enc;
    wh_norm enc_ln;
    /* decoder */
    fl_tensor tok_emb; /* n_vocab rows of n_text_state */
    const float *dec_pos;
    wh_block *dec;
    wh_norm dec_ln;
    /* every float vector converted at load time, freed with the model */
    float **owned;
    size_t n_owned;
    uint64_t n_params;
    /* BPE lookup: open-addressing table from token bytes to id */
    int32_t *bpe_table;
    size_t bpe_table_size;
    void *split_re; /* the word-splitting pattern (a pcre2_code), compiled once */
};

/* Reads a file up to its vocabulary (hparams, specials, mel filters, tokens) and ignores the
 * tensors: for header-only files and tests. Only the text and mel functions may be used. */
fluid_whisper *wh_load_header(const char *path, fluid_error *err);

/* Writes a random-weight model of a preset ("tiny", "base", "small", or "test": 64 wide,
 * 2 layers) with the vocabulary and mel filters of the file `from`, in the ggml layout
 * whisper.cpp reads, matrices of type `type` (conv kernels F16, vectors F32 as in whisper.cpp's
 * files). Used by fluid-synth and the tests. */
fluid_status wh_synth_write(const char *from, const char *out, const char *preset, fl_type type,
                            uint64_t seed, fluid_error *err);

/* ---- model text ---- */
/* Encodes UTF-8 text into tokens (tiktoken-style BPE over the file's ranks). Returns a malloc'd
 * array or NULL (no memory). */
int32_t *wh_tokenize(const fluid_whisper *m, const char *text, size_t *n_tokens);
bool wh_bpe_init(fluid_whisper *m);
void wh_bpe_free(fluid_whisper *m);
/* A copy of n bytes as valid UTF-8: each byte that starts no valid character becomes U+FFFD
 * (malloc'd; NULL without memory). */
char *wh_utf8_sanitize(const char *s, size_t n);
/* The ids of "non-speech" symbol tokens OpenAI suppresses by default (malloc'd). */
int32_t *wh_non_speech_tokens(const fluid_whisper *m, size_t *n);

/* ---- mel ---- */
/* Log-mel spectrogram of n samples (zero-padded at the end by pad samples): writes a malloc'd
 * array of n_mels x *n_frames floats (row-major by mel bin). */
fluid_status wh_log_mel(const float *pcm, size_t n, size_t pad, const float *filters,
                        int32_t n_mels, int32_t n_fft_bins, float **mel, size_t *n_frames,
                        fluid_error *err);

/* ---- forward passes ---- */
typedef struct wh_state wh_state;

/* State for decoding up to n_seq sequences (beams) of one window. */
wh_state *wh_state_create(const fluid_whisper *m, int n_seq, fluid_error *err);
void wh_state_free(wh_state *s);

/* Runs the encoder on 2 * n_audio_ctx mel frames (n_mels rows, row stride `stride` floats) and
 * computes the cross-attention keys/values of every decoder layer. */
fluid_status wh_encode(wh_state *s, const float *mel, size_t stride, fl_pool *pool,
                       fluid_error *err);
/* The encoder output (n_audio_ctx x n_audio_state) of the last wh_encode. */
const float *wh_encoder_output(const wh_state *s);

/* Feeds n tokens to sequence seq after its n_past cached ones; writes the logits of the last
 * token (n_vocab floats) to logits, and, when all_logits is not NULL, of every token. */
fluid_status wh_decode(wh_state *s, int seq, const int32_t *tokens, int n, float *logits,
                       float *all_logits, fl_pool *pool, fluid_error *err);
/* One token for each of n distinct sequences, in one pass (beams, candidates): logits receives
 * n rows of n_vocab floats. */
fluid_status wh_decode_step(wh_state *s, const int *seqs, const int32_t *tokens, int n,
                            float *logits, fl_pool *pool, fluid_error *err);
int wh_seq_past(const wh_state *s, int seq);
void wh_seq_rewind(wh_state *s, int seq, int n_past);
/* Copies sequence src's cache into dst. */
void wh_seq_copy(wh_state *s, int dst, int src);

/* ---- decoding rules (exposed for the tests) ---- */
typedef struct wh_rules {
    const wh_specials *sp;
    int32_t n_vocab;
    const int32_t *suppress; /* always suppressed (non-speech + task specials) */
    size_t n_suppress;
    const int32_t *suppress_blank; /* suppressed at the first sampled position */
    size_t n_suppress_blank;
    bool timestamps;
    int32_t max_initial_timestamp; /* in timestamp steps (50 = 1 s); < 0 = none */
} wh_rules;

/* Applies OpenAI Whisper's logit filters in place to the logits for the next token after
 * `sampled` (the tokens sampled so far in this window, no prompt/SOT). */
void wh_apply_rules(const wh_rules *r, const int32_t *sampled, size_t n_sampled, float *logits);

/* A segment of a window: tokens [begin, end), times in seconds from the window's start. */
typedef struct wh_span {
    size_t begin, end;
    double start, stop;
} wh_span;

/* Cuts a window's n tokens (window_frames of real audio) at each pair of consecutive
 * timestamps, as OpenAI Whisper does. Writes at most n + 1 spans and returns their count;
 * *advance = mel frames to move the window by (to the last complete timestamp, or the whole
 * window when the tokens end on a lone timestamp or hold no pair). */
size_t wh_split_window(const int32_t *tok, size_t n, int32_t beg, size_t window_frames,
                       wh_span *spans, size_t *advance);

/* Log-softmax in place over n values (handles -inf). */
void wh_log_softmax(float *x, int32_t n);

/* The ratio of the text's length to its zlib-compressed length. */
float wh_compression_ratio(const char *text, size_t len);

#endif

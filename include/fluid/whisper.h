/* libfluid speech-to-text: Whisper models in the ggml file format published for whisper.cpp
 * (ggml-tiny.bin ... ggml-large-v3-turbo.bin, also their -q5_0/-q8_0 variants), audio decoding
 * of any container ffmpeg reads, and OpenAI-style transcription/translation.
 *
 * Errors and the compute pool are those of fluid/fluid.h. A model may be shared by several
 * threads (it is read-only after loading); each transcribe call keeps its own state. */
#ifndef FLUID_WHISPER_H
#define FLUID_WHISPER_H

#include "fluid/fluid.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FLUID_WHISPER_SAMPLE_RATE 16000

/* ---- audio ------------------------------------------------------------------------------- */

/* Decodes an audio file held in memory (flac, mp3, mp4/m4a, mpeg/mpga, ogg, wav, webm, ...:
 * whatever libavformat recognises), down-mixed and resampled to 16 kHz mono float in [-1, 1].
 * On success *pcm is a malloc'd array of *n_samples floats (free() it). Empty, truncated or
 * undecodable input fails with FLUID_ERR_FORMAT and a message. */
fluid_status fluid_audio_decode(const void *bytes, size_t n_bytes, float **pcm, size_t *n_samples,
                                fluid_error *err);

/* The same with a cap on the output: decoding stops as soon as it has produced more than
 * max_samples samples (16 kHz) and fails with FLUID_ERR_LIMIT, so a small but highly
 * compressed (or low sample rate) input cannot decode into gigabytes before a length check.
 * Memory stays near max_samples floats. max_samples 0 = no cap. */
fluid_status fluid_audio_decode_max(const void *bytes, size_t n_bytes, size_t max_samples,
                                    float **pcm, size_t *n_samples, fluid_error *err);

/* The same for a file on disk. */
fluid_status fluid_audio_decode_file(const char *path, float **pcm, size_t *n_samples,
                                     fluid_error *err);

/* Sends libav's own messages (mostly complaints about the input being decoded, which the
 * decode functions already turn into errors) to fluid's log at debug level instead of stderr.
 * libav's logging is process-wide: a program calls this once at start-up, before decoding;
 * decoding never changes it. */
void fluid_audio_log_to_fluid(void);

/* ---- models ------------------------------------------------------------------------------ */

typedef struct fluid_whisper fluid_whisper;

typedef struct fluid_whisper_info {
    const char *type_name; /* the dominant weight type, e.g. "f16", "q5_0" */
    const char *size_name; /* "tiny", "base", "small", "medium", "large", or "custom" */
    bool multilingual;     /* false for the .en models */
    int32_t n_vocab;
    int32_t n_mels; /* 80, or 128 for large-v3 */
    int32_t n_audio_ctx;
    int32_t n_audio_state;
    int32_t n_audio_head;
    int32_t n_audio_layer;
    int32_t n_text_ctx;
    int32_t n_text_state;
    int32_t n_text_head;
    int32_t n_text_layer;
    int32_t n_languages; /* languages the model knows (0 for .en models) */
    uint64_t n_params;
    uint64_t file_bytes;
} fluid_whisper_info;

/* Loads a ggml Whisper model. A truncated or corrupt file fails with a message. */
fluid_whisper *fluid_whisper_load(const char *path, fluid_error *err);
void fluid_whisper_free(fluid_whisper *model);
void fluid_whisper_get_info(const fluid_whisper *model, fluid_whisper_info *info);

/* Languages: index i in [0, n_languages) has a two- or three-letter code ("en", "haw") and an
 * English name ("english"). Returns -1 / NULL when unknown. */
int32_t fluid_whisper_lang_id(const char *code_or_name);
const char *fluid_whisper_lang_code(int32_t id);
const char *fluid_whisper_lang_name(int32_t id);

/* The text of a token (NULL when out of range); special tokens give their "<|...|>" text. */
const char *fluid_whisper_token_text(const fluid_whisper *model, int32_t token);

/* ---- transcription ----------------------------------------------------------------------- */

typedef struct fluid_whisper_word {
    const char *text;  /* valid during the callback */
    double start, end; /* seconds from the start of the audio */
    float probability;
} fluid_whisper_word;

typedef struct fluid_whisper_segment {
    int32_t id;            /* 0, 1, 2, ... */
    int64_t seek;          /* start of the 30 s window, in mel frames (10 ms each) */
    double start, end;     /* seconds from the start of the audio */
    const char *text;      /* UTF-8; valid during the callback */
    const int32_t *tokens; /* the segment's tokens, timestamp tokens included */
    size_t n_tokens;
    float temperature; /* temperature of the decoding that was kept */
    float avg_logprob;
    float compression_ratio;
    float no_speech_prob;
    const fluid_whisper_word *words; /* only when word_timestamps was asked */
    size_t n_words;
} fluid_whisper_segment;

/* Called as each segment becomes final. Return false to stop (the call then fails with
 * FLUID_ERR_CANCELLED). */
typedef bool (*fluid_whisper_segment_cb)(const fluid_whisper_segment *segment, void *user);
/* Polled between decoder steps; return true to stop. */
typedef bool (*fluid_whisper_abort_cb)(void *user);

typedef struct fluid_whisper_params {
    const char *language;              /* "en", "english", ...; NULL or "auto" = detect */
    bool translate;                    /* translate to English instead of transcribing */
    const char *initial_prompt;        /* previous-context text, or NULL */
    float temperature;                 /* the first temperature tried (0 = greedy) */
    float temperature_increment;       /* fallback step (0.2); <= 0 disables fallback */
    bool fallback;                     /* retry hotter on compression ratio / logprob failure */
    float compression_ratio_threshold; /* 2.4 */
    float logprob_threshold;           /* -1.0 */
    float no_speech_threshold;         /* 0.6 */
    int32_t beam_size;                 /* 0 or 1 = greedy; 5 = OpenAI's default beam search */
    int32_t best_of;                   /* samples drawn at temperature > 0 (5) */
    bool condition_on_previous_text;   /* feed the previous window's text as prompt (true) */
    bool word_timestamps; /* words of each segment, its time shared by their byte length */
    bool timestamps;      /* false = <|notimestamps|>: one segment per window */
    int32_t max_tokens;   /* per window; 0 = the model's n_text_ctx / 2 */
    uint64_t seed;        /* for sampling at temperature > 0 */
    fluid_whisper_segment_cb on_segment;
    void *on_segment_user;
    fluid_whisper_abort_cb should_abort;
    void *should_abort_user;
} fluid_whisper_params;

/* Fills params with OpenAI Whisper's defaults (listed above). */
void fluid_whisper_params_defaults(fluid_whisper_params *params);

typedef struct fluid_whisper_result {
    char *text;          /* the whole transcript (malloc'd) */
    char language[8];    /* the language used (given or detected), e.g. "en" */
    float language_prob; /* probability of the detected language (1 when given) */
    double duration;     /* seconds of audio */
    int32_t n_segments;
    int32_t *token_ids; /* every decoded token of every kept segment (no SOT prefix) */
    size_t n_token_ids;
} fluid_whisper_result;

/* Transcribes (or translates) n_samples of 16 kHz mono audio. Segments go to params->on_segment
 * as they become final; the result (may be NULL) receives the whole text. */
fluid_status fluid_whisper_transcribe(fluid_whisper *model, fluid_pool *pool, const float *pcm,
                                      size_t n_samples, const fluid_whisper_params *params,
                                      fluid_whisper_result *result, fluid_error *err);
void fluid_whisper_result_free(fluid_whisper_result *result);

/* Detects the spoken language of the first 30 s: returns its id (fluid_whisper_lang_code) and
 * writes its probability to *prob (may be NULL); -1 with err set on failure. */
int32_t fluid_whisper_detect_language(fluid_whisper *model, fluid_pool *pool, const float *pcm,
                                      size_t n_samples, float *prob, fluid_error *err);

#ifdef __cplusplus
}
#endif

#endif

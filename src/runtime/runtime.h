/* The runtime manager: which models exist (on disk, on the Hub), their life cycle (download,
 * load, idle unload, eviction), and the jobs (chat/completion generation, transcription) that
 * run on them. Knows models and jobs; knows nothing of HTTP or JSON.
 *
 * Threads: every function here may be called from any thread. rt_list_models, rt_health and
 * rt_download_poll never wait for a load, a download or a decoding step (they read snapshots).
 * Submitting a job never waits for a model to load: the job waits (bounded by
 * rt_config.load_wait_s) on the model's worker side and reports a typed error if it cannot run.
 *
 * Model names (see docs/models.md):
 *   LLM      "<path under llm/ without .gguf>" (e.g. "qwen2.5-0.5b-instruct-q8_0", "sub/x") or a
 *            Hub file "owner/repo/file.gguf" (stored as llm/owner/repo/file.gguf, listed as
 *            "owner/repo/file"); the ".gguf" suffix is optional everywhere.
 *   Whisper  "whisper-<name>" = whisper/ggml-<name>.bin; when missing it is fetched from the Hub
 *            repository ggerganov/whisper.cpp, file ggml-<name>.bin (whisper-base, whisper-tiny.en,
 *            whisper-large-v3-turbo, whisper-base.en-q5_1, ...). */
#ifndef FLUID_RUNTIME_RUNTIME_H
#define FLUID_RUNTIME_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/fluid.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The defaults of --llm-model and --whisper-model: small published models that run on a CPU. */
#define RT_DEFAULT_LLM "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf"
#define RT_DEFAULT_WHISPER "whisper-base"
#define RT_DEFAULT_HF_ENDPOINT "https://huggingface.co"

#define RT_ID_MAX 256      /* longest model id, terminating NUL included */
#define RT_MESSAGE_MAX 512 /* longest error message, NUL included */
#define RT_MAX_STOP 4      /* stop strings per request (OpenAI's limit) */
#define RT_MAX_TOP_LOGPROBS 20
#define RT_TOKEN_TEXT_MAX 64 /* bytes of a token's text kept for logprobs (longer = cut) */

/* ---- errors ------------------------------------------------------------------------------ */

/* What went wrong, in classes the HTTP layer maps to statuses:
 * BAD_REQUEST 400, MODEL_NOT_FOUND 404, BUSY 429/503 + Retry-After, LOADING 503 + Retry-After,
 * UNAVAILABLE 503 (download failed, gated, out of memory budget; + Retry-After when retry_after_s
 * > 0), INTERNAL 500, NO_SPACE 507 (the disk is full: a download could not be written). */
typedef enum rt_status {
    RT_OK = 0,
    RT_ERR_BAD_REQUEST,
    RT_ERR_MODEL_NOT_FOUND,
    RT_ERR_BUSY,
    RT_ERR_LOADING,
    RT_ERR_UNAVAILABLE,
    RT_ERR_INTERNAL,
    RT_ERR_NO_SPACE,
} rt_status;

typedef struct rt_error {
    rt_status status;
    int retry_after_s; /* > 0: the client may retry after this many seconds */
    char message[RT_MESSAGE_MAX];
    /* Optional, for errors about one request field: OpenAI's error code and the field
     * ("context_length_exceeded" / "messages"); "" = derived from status. */
    char code[32];
    char param[32];
} rt_error;

/* A short lower-case name of a status ("bad_request", "model_not_found", "busy", ...). */
const char *rt_status_name(rt_status status);

/* ---- configuration ----------------------------------------------------------------------- */

typedef struct rt_config {
    const char *model_path;       /* root of llm/, whisper/, cache/ (default "./models") */
    const char *cache_dir;        /* scratch space; NULL = <model_path>/cache */
    const char *llm_model;        /* default LLM; NULL = RT_DEFAULT_LLM, "" = none */
    const char *whisper_model;    /* default Whisper; NULL = RT_DEFAULT_WHISPER, "" = none */
    const char *device;           /* "AUTO", "CPU", "GPU", "NPU" (case-insensitive); NULL = AUTO */
    bool warm_up;                 /* fetch + load the defaults in the background at start */
    bool auto_download;           /* fetch missing Hub models when a request names them (true) */
    double idle_timeout_s;        /* unload models unused this long; 0 = never (default 300) */
    double idle_check_interval_s; /* how often the reaper looks (default 60; tests: < 1) */
    double max_memory_gb;         /* resident weights + KV caches; 0 = no limit */
    int max_models_per_type;      /* resident models per type (default 1) */
    int n_threads;                /* compute pool size; 0 = one per online core */
    int n_ctx;                    /* context per generation; 0 = model's, capped at 4096 */
    int queue_capacity;           /* queued jobs per model before BUSY (default 8) */
    double load_wait_s;           /* how long a job waits for its model (default 60) */
    const char *hf_endpoint;      /* NULL = $HF_ENDPOINT or RT_DEFAULT_HF_ENDPOINT */
    const char *hf_token;         /* NULL = $HF_TOKEN (may stay unset) */
    int download_retries;         /* attempts per download after the first (default 4) */
    double download_backoff_s;    /* first retry delay, doubled each time, jittered (1.0) */
    bool progress_bar;            /* draw download progress on stderr when it is a tty (true) */
} rt_config;

/* Fills cfg with the defaults listed above. */
void rt_config_defaults(rt_config *cfg);

/* ---- the manager ------------------------------------------------------------------------- */

typedef struct rt_manager rt_manager;

/* Creates a manager (copies every string of cfg), scans model_path and creates the compute pool.
 * Starts no thread. Fails only on bad configuration or no memory (never on a missing model or
 * no network): NULL with err set. */
rt_manager *rt_create(const rt_config *cfg, rt_error *err);

/* Starts the background threads: the idle reaper and, when warm_up, the warm-up that fetches
 * and loads the default models. Returns at once. */
rt_status rt_start(rt_manager *rt, rt_error *err);

/* Cancels every job (their channels get a finished event with reason CANCELLED), stops the
 * threads, waits for them, unloads everything and frees the manager. Jobs not yet released
 * stay valid until rt_job_release. */
void rt_destroy(rt_manager *rt);

/* Cancels every running job and fails every queued one ("the server is shutting down"); the
 * manager stays usable. For the end of a graceful shutdown's grace period. */
void rt_cancel_jobs(rt_manager *rt);

/* Re-reads model_path: files added while running appear, removed ones disappear (unless
 * loaded or in use). */
rt_status rt_rescan(rt_manager *rt, rt_error *err);

/* ---- snapshots (never block) ------------------------------------------------------------- */

typedef enum rt_model_type { RT_MODEL_LLM, RT_MODEL_WHISPER } rt_model_type;

typedef enum rt_model_state {
    RT_STATE_ABSENT,      /* configured or named, not on disk (not yet downloaded) */
    RT_STATE_DOWNLOADING, /* download_bytes / download_total tell how far */
    RT_STATE_ON_DISK,     /* on disk, not loaded */
    RT_STATE_LOADING,
    RT_STATE_READY, /* resident and usable */
    RT_STATE_UNLOADING,
    RT_STATE_FAILED, /* error tells why; the next request retries */
} rt_model_state;

const char *rt_model_type_name(rt_model_type type);    /* "llm", "whisper" */
const char *rt_model_state_name(rt_model_state state); /* "absent", "downloading", ... */

typedef struct rt_model_info {
    char id[RT_ID_MAX];
    rt_model_type type;
    rt_model_state state;
    bool is_default;            /* the configured --llm-model / --whisper-model */
    char error[RT_MESSAGE_MAX]; /* why it failed ("" otherwise) */
    char path[1024];            /* where it is or will be on disk */
    uint64_t size_bytes;        /* file size (0 when absent) */
    int64_t created;            /* file mtime, Unix seconds (0 when absent) */
    uint64_t download_bytes;    /* while downloading (or after a failed one) */
    uint64_t download_total;    /* 0 = not known yet */
    double download_rate;       /* bytes per second, recent */
    uint64_t memory_bytes;      /* resident bytes (weights + KV caches) when loaded */
    int active_jobs;            /* jobs running or queued on it */
    double idle_s;              /* seconds since its last job ended (loaded models) */
} rt_model_info;

/* Every known model: files under model_path plus configured or requested models that are not
 * on disk, sorted by type then id. *out is malloc'd (free it with rt_free_models). */
rt_status rt_list_models(rt_manager *rt, rt_model_info **out, size_t *n, rt_error *err);
void rt_free_models(rt_model_info *models);

/* Looks one model up by any of its names (id, Hub name, with or without .gguf). */
rt_status rt_get_model(rt_manager *rt, const char *name, rt_model_info *out, rt_error *err);

typedef enum rt_overall {
    RT_HEALTH_STARTING, /* warm-up still downloading or loading the defaults */
    RT_HEALTH_READY,    /* every configured default is ready (or lazily loadable) */
    RT_HEALTH_DEGRADED, /* a default failed (see the runtime's error) */
} rt_overall;

const char *rt_overall_name(rt_overall overall); /* "starting", "ready", "degraded" */

/* One per type: the default model of that type, or the resident one when another was loaded. */
typedef struct rt_runtime_health {
    bool configured; /* false: no model of this type is configured or resident */
    char model[RT_ID_MAX];
    rt_model_state state;
    char error[RT_MESSAGE_MAX];
    uint64_t download_bytes, download_total;
    double download_rate;
    int loaded_count; /* models of this type resident */
} rt_runtime_health;

typedef struct rt_health_info {
    rt_overall status;
    bool warming_up;
    char warmup_task[RT_ID_MAX + 64]; /* what the warm-up is doing ("" when done) */
    rt_runtime_health llm, whisper;
    uint64_t memory_bytes;       /* resident weights + KV caches of all models */
    uint64_t memory_limit_bytes; /* 0 = no limit */
    char device_requested[8];    /* as configured: "AUTO", "CPU", "GPU", "NPU" */
    char device_used[8];         /* "CPU" in this build */
    char device_note[128];       /* why the request was not honoured ("" when it was) */
    double uptime_s;
    int n_threads;
    int jobs_running, jobs_queued;
} rt_health_info;

void rt_health(rt_manager *rt, rt_health_info *out);

/* ---- explicit model control -------------------------------------------------------------- */

/* Starts loading (downloading first when needed) and returns at once; wait_s > 0 waits up to
 * that long for READY (then fails with LOADING when not done). */
rt_status rt_load_model(rt_manager *rt, const char *name, double wait_s, rt_error *err);
/* Unloads a model when no job uses it (BUSY otherwise). */
rt_status rt_unload_model(rt_manager *rt, const char *name, rt_error *err);

/* ---- jobs -------------------------------------------------------------------------------- */

typedef struct rt_job rt_job;

typedef struct rt_chat_request {
    const char *model; /* NULL or "" = the default LLM */
    /* Either messages (chat: formatted with the model's chat template) ... */
    const fluid_chat_message *messages;
    size_t n_messages;
    /* ... or a raw prompt (legacy completions: no template). */
    const char *prompt;
    bool echo;               /* completions: emit the prompt text first */
    fluid_sampling sampling; /* start from fluid_sampling_defaults */
    int32_t max_tokens;      /* <= 0 = until the context is full */
    /* max_tokens is the client's (not a default): prompt + max_tokens beyond the context is
     * refused ("context_length_exceeded") instead of cut short. */
    bool max_tokens_explicit;
    const char *stop[RT_MAX_STOP];
    size_t n_stop;
    bool logprobs;        /* report each generated token's logprob */
    int32_t top_logprobs; /* 0..RT_MAX_TOP_LOGPROBS alternatives per token */
} rt_chat_request;

typedef struct rt_transcription_request {
    const char *model; /* NULL or "" = the default Whisper model */
    const void *audio; /* the uploaded file's bytes (any container libav reads) */
    size_t audio_len;
    const char *language; /* NULL = detect */
    const char *prompt;   /* NULL = none */
    bool translate;       /* /v1/audio/translations */
    float temperature;    /* 0 = greedy, hotter retries on failure; > 0 = sampled, no retry */
    bool word_timestamps;
    bool segments;      /* emit RT_EVENT_SEGMENT events (verbose_json, srt, vtt, streaming) */
    double max_seconds; /* longer audio fails with BAD_REQUEST "audio_too_long"; 0 = no limit */
} rt_transcription_request;

/* Submits a job. Everything the request points at is copied: the caller may free it at once.
 * Fails at once (no job) for: an unknown model (MODEL_NOT_FOUND), a model of the wrong type or
 * bad parameters (BAD_REQUEST), a full queue (BUSY + retry_after_s), a model that failed and
 * cannot be retried now (UNAVAILABLE). Otherwise *out is a job that will run once its model is
 * ready; a load that fails or takes longer than load_wait_s ends the job with that error. */
rt_status rt_submit_chat(rt_manager *rt, const rt_chat_request *req, rt_job **out, rt_error *err);
rt_status rt_submit_transcription(rt_manager *rt, const rt_transcription_request *req, rt_job **out,
                                  rt_error *err);

typedef enum rt_event_type {
    RT_EVENT_NONE,     /* rt_job_next timed out */
    RT_EVENT_TEXT,     /* generated text (and the logprobs of the tokens it completes) */
    RT_EVENT_SEGMENT,  /* a transcription segment */
    RT_EVENT_FINISHED, /* the last event of every job */
} rt_event_type;

typedef enum rt_finish_reason {
    RT_FINISH_STOP,      /* end-of-generation token or a stop string */
    RT_FINISH_LENGTH,    /* max_tokens or the context was reached */
    RT_FINISH_CANCELLED, /* rt_job_cancel or rt_destroy */
    RT_FINISH_ERROR,     /* error tells why */
} rt_finish_reason;

const char *rt_finish_reason_name(rt_finish_reason reason); /* "stop", "length", ... */

typedef struct rt_logprob_alt {
    char text[RT_TOKEN_TEXT_MAX]; /* the token's bytes (may be part of a UTF-8 character) */
    size_t text_len;
    float logprob;
} rt_logprob_alt;

typedef struct rt_token_logprob {
    char text[RT_TOKEN_TEXT_MAX];
    size_t text_len;
    float logprob;
    int n_top;
    rt_logprob_alt top[RT_MAX_TOP_LOGPROBS];
} rt_token_logprob;

typedef struct rt_word {
    const char *text;
    double start, end;
    float probability;
} rt_word;

typedef struct rt_segment {
    int id;
    int64_t seek;
    double start, end; /* seconds */
    const char *text;
    const int32_t *tokens;
    size_t n_tokens;
    float temperature, avg_logprob, compression_ratio, no_speech_prob;
    const rt_word *words;
    size_t n_words;
} rt_segment;

typedef struct rt_usage {
    int prompt_tokens;
    int completion_tokens;
} rt_usage;

/* An event; every pointer in it stays valid until the next rt_job_next or rt_job_release. */
typedef struct rt_event {
    rt_event_type type;
    /* TEXT: UTF-8, never the start of a stop string that might still match. */
    const char *text;
    size_t text_len;
    const rt_token_logprob *logprobs; /* one per token whose text is now emitted */
    size_t n_logprobs;
    /* SEGMENT */
    const rt_segment *segment;
    /* FINISHED */
    rt_finish_reason finish_reason;
    rt_usage usage;
    rt_error error;        /* status RT_OK unless finish_reason is ERROR */
    const char *model;     /* the id of the model that ran the job */
    const char *full_text; /* transcription: the whole transcript */
    const char *language;  /* transcription: the language used ("en") */
    double duration;       /* transcription: seconds of audio */
} rt_event;

/* Waits up to timeout_ms (< 0 = no limit, 0 = poll) for the job's next event. Returns true with
 * *ev filled, or false on timeout (ev->type = RT_EVENT_NONE). After FINISHED it returns FINISHED
 * again at once. */
bool rt_job_next(rt_job *job, int timeout_ms, rt_event *ev);

/* Asks the job to stop (the client went away): it ends within one decoding step with
 * finish_reason CANCELLED. Safe to call several times and after it finished. */
void rt_job_cancel(rt_job *job);

/* Drops the caller's reference; cancels the job if it still runs. */
void rt_job_release(rt_job *job);

/* ---- downloads --------------------------------------------------------------------------- */

typedef struct rt_download rt_download;

typedef enum rt_download_state {
    RT_DOWNLOAD_QUEUED,
    RT_DOWNLOAD_RUNNING,
    RT_DOWNLOAD_VERIFYING,
    RT_DOWNLOAD_DONE, /* already present counts as done */
    RT_DOWNLOAD_FAILED,
} rt_download_state;

const char *rt_download_state_name(rt_download_state state);

typedef struct rt_download_progress {
    char model[RT_ID_MAX]; /* the model id the file will be listed as */
    rt_download_state state;
    uint64_t bytes, total; /* total 0 = not known yet */
    double rate;           /* bytes per second */
    double eta_s;          /* < 0 = unknown */
    int attempt;           /* 1, 2, ... */
    rt_error error;        /* when FAILED */
} rt_download_progress;

/* Starts fetching a Hub model (single-flight: joins a running download of the same file) and
 * returns at once. Unknown names / unsafe names fail here; network errors arrive as progress
 * with state FAILED. */
rt_status rt_download_start(rt_manager *rt, const char *name, rt_download **out, rt_error *err);

/* Waits up to timeout_ms for the progress to change (or the download to end), then fills *p.
 * Returns true when the download has ended (DONE or FAILED). */
bool rt_download_poll(rt_download *d, int timeout_ms, rt_download_progress *p);

/* Drops the handle; the download itself continues (the model needs it). */
void rt_download_release(rt_download *d);

#ifdef __cplusplus
}
#endif

#endif

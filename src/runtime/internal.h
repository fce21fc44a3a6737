/* The manager's shared state, for manager.c (registry, workers, policy), snapshot.c (lists and
 * health) and download.c (Hub downloads). Everything in rt_manager and rt_model is guarded by
 * rt_manager.mu unless marked otherwise; the lock is never held across a load, a download or a
 * decoding step. */
#ifndef FLUID_RUNTIME_INTERNAL_H
#define FLUID_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "runtime/engine.h"
#include "runtime/fetch.h"
#include "runtime/job.h"
#include "runtime/names.h"

typedef struct rt_dl rt_dl;

struct rt_model {
    rt_manager *rt;
    rt_name name;
    char path[RT_PATH_MAX]; /* the file (or where it will be) */
    bool listed;            /* shown by rt_list_models */
    bool on_disk;
    uint64_t size;
    int64_t mtime;
    bool is_default;
    rt_model_state state;
    rt_error error; /* the last failure; status RT_OK when none */
    rt_dl *dl;      /* the running or last download */
    void *handle;   /* the engine's model when resident */
    uint64_t weights_bytes, kv_bytes, reserved_bytes;
    /* The engine's estimate of one job's context memory (KV cache) for the file of this size
     * and mtime, counted with the weights when --max-memory decides whether a load fits. */
    uint64_t context_bytes, context_for_size;
    int64_t context_for_mtime;
    bool context_estimated;
    int running;     /* jobs running on it */
    rt_job *current; /* the job its worker runs */
    rt_job *queue_head, *queue_tail;
    int queued;
    bool want_loaded;     /* a load was asked for without a job (warm-up, rt_load_model) */
    double want_deadline; /* give up waiting for memory for that load after this */
    bool warmup_pending;  /* a default the warm-up has not finished with */
    double last_used;
    bool has_worker;
    pthread_t worker;
};

struct rt_manager {
    rt_config cfg; /* strings point into the owned copies below */
    char *model_path, *cache_dir, *llm_default, *whisper_default, *hf_endpoint, *hf_token;
    char device_requested[8], device_note[128];
    rt_engine engine;
    fluid_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every state change */
    rt_model **models;
    size_t n_models, cap_models;
    rt_model *default_llm, *default_whisper;
    bool started, stopping;
    bool has_reaper;
    pthread_t reaper;
    rt_dl **dls; /* every download started (joined and freed at destroy) */
    size_t n_dls, cap_dls;
    double start_time;
    double last_miss_rescan; /* rt_now() of the last rescan for an unknown name (rate limit) */
    int jobs_running;
};

/* manager.c */
rt_model *rt_find_model_locked(rt_manager *rt, const char *id);
/* Finds a model by any of its names, or creates an entry for a Hub name (not listed until its
 * download starts). */
rt_status rt_resolve_locked(rt_manager *rt, const char *name, rt_model **out, rt_error *err);
void rt_wait_locked(rt_manager *rt, double deadline); /* cond wait until rt_now() >= deadline */
uint64_t rt_memory_used_locked(const rt_manager *rt);

/* download.c */
/* Starts (or joins) the download of m. */
rt_status rt_download_begin_locked(rt_manager *rt, rt_model *m, rt_dl **out, rt_error *err);
void rt_download_progress_of(rt_dl *dl, uint64_t *bytes, uint64_t *total, double *rate);
void rt_downloads_cancel(rt_manager *rt); /* all of them (shutdown) */
void rt_downloads_join_and_free(rt_manager *rt);

#endif

/* What the manager needs from an inference engine: load, unload and run a job. The default is
 * libfluid (engine_fluid.c); tests plug in a scripted engine to drive the state machine. */
#ifndef FLUID_RUNTIME_ENGINE_H
#define FLUID_RUNTIME_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "fluid/fluid.h"
#include "runtime/job.h"
#include "runtime/runtime.h"

/* What a running job may ask of the manager. */
typedef struct rt_run_env {
    fluid_pool *pool;
    int n_ctx; /* context to give a session; 0 = the model's, capped at 4096 */
    /* Accounts `delta` bytes of per-job memory (KV caches) to the model; a positive delta that
     * would pass --max-memory first evicts idle models, then fails with UNAVAILABLE. */
    rt_status (*reserve)(void *user, int64_t delta, rt_error *err);
    void *reserve_user;
} rt_run_env;

typedef struct rt_engine {
    void *user;
    /* Loads a model file; *resident_bytes receives the memory it holds (mapped weights). */
    void *(*load)(void *user, rt_model_type type, const char *path, uint64_t *resident_bytes,
                  rt_error *err);
    void (*unload)(void *user, rt_model_type type, void *handle);
    /* Optional: memory a job's context of n_ctx tokens (0 = the default) will take beside the
     * weights, read from the file before loading it (0 when unknown). */
    uint64_t (*context_bytes)(void *user, rt_model_type type, const char *path, int n_ctx);
    /* Runs a job to its end: emits its events and finishes it (rt_job_finish). Checks
     * rt_job_cancelled between steps. */
    void (*run)(void *user, rt_model_type type, void *handle, rt_job *job, const rt_run_env *env);
    /* Optional: whether the model's file changed under it (truncated while mapped); the
     * manager then unloads it after the job, and the next request loads the file again. */
    bool (*damaged)(void *user, rt_model_type type, void *handle);
} rt_engine;

/* libfluid. */
const rt_engine *rt_engine_fluid(void);

/* rt_create with another engine (tests). */
rt_manager *rt_create_with_engine(const rt_config *cfg, const rt_engine *engine, rt_error *err);

/* The job runners of the libfluid engine. */
void rt_generate(fluid_model *model, rt_job *job, const rt_run_env *env);
void rt_transcribe(void *whisper, rt_job *job, const rt_run_env *env);

#endif

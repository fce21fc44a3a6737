/* The libfluid engine behind the manager. */
#include <sys/stat.h>

#include "fluid/whisper.h"
#include "runtime/engine.h"
#include "runtime/common.h"
#include "util/log.h"

static uint64_t file_bytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void *fluid_load(void *user, rt_model_type type, const char *path, uint64_t *bytes,
                        rt_error *err) {
    (void)user;
    fluid_error ferr = {0};
    void *handle = type == RT_MODEL_LLM ? (void *)fluid_model_load(path, &ferr)
                                        : (void *)fluid_whisper_load(path, &ferr);
    if (handle == NULL) {
        rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "cannot load %s: %s", path, ferr.message);
        return NULL;
    }
    /* Weights are mapped: what they take is the file's size. */
    *bytes = file_bytes(path);
    return handle;
}

static void fluid_unload(void *user, rt_model_type type, void *handle) {
    (void)user;
    if (type == RT_MODEL_LLM)
        fluid_model_free(handle);
    else
        fluid_whisper_free(handle);
}

static uint64_t fluid_context_bytes(void *user, rt_model_type type, const char *path, int n_ctx) {
    (void)user;
    uint64_t bytes = 0;
    fluid_error ferr = {0};
    /* Whisper's decoder caches are small beside its weights: not estimated. */
    if (type == RT_MODEL_LLM && fluid_model_context_bytes(path, n_ctx, &bytes, &ferr) != FLUID_OK)
        fl_log(FL_LOG_DEBUG, "no context estimate for %s: %s", path, ferr.message);
    return bytes;
}

static void fluid_run(void *user, rt_model_type type, void *handle, rt_job *job,
                      const rt_run_env *env) {
    (void)user;
    if (type == RT_MODEL_LLM)
        rt_generate(handle, job, env);
    else
        rt_transcribe(handle, job, env);
}

/* Whisper weights are copied at load: only a language model keeps its file mapped. */
static bool fluid_damaged(void *user, rt_model_type type, void *handle) {
    (void)user;
    return type == RT_MODEL_LLM && fluid_model_file_damaged(handle);
}

const rt_engine *rt_engine_fluid(void) {
    static const rt_engine engine = {.load = fluid_load,
                                     .unload = fluid_unload,
                                     .context_bytes = fluid_context_bytes,
                                     .run = fluid_run,
                                     .damaged = fluid_damaged};
    return &engine;
}

/* Read-only views of the manager for /v1/models and /health: copied under the lock, which no
 * one holds across slow work, so they answer at once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/internal.h"
#include "runtime/common.h"

const char *rt_model_type_name(rt_model_type type) {
    return type == RT_MODEL_WHISPER ? "whisper" : "llm";
}

const char *rt_model_state_name(rt_model_state state) {
    static const char *const names[] = {"absent", "downloading", "on_disk", "loading",
                                        "ready",  "unloading",   "failed"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "failed";
}

const char *rt_overall_name(rt_overall overall) {
    static const char *const names[] = {"starting", "ready", "degraded"};
    return (unsigned)overall < sizeof names / sizeof names[0] ? names[overall] : "degraded";
}

const char *rt_finish_reason_name(rt_finish_reason reason) {
    static const char *const names[] = {"stop", "length", "cancelled", "error"};
    return (unsigned)reason < sizeof names / sizeof names[0] ? names[reason] : "error";
}

static void fill_info_locked(const rt_model *m, rt_model_info *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", m->name.id);
    out->type = m->name.type;
    out->state = m->state;
    out->is_default = m->is_default;
    if (m->error.status != RT_OK) snprintf(out->error, sizeof out->error, "%s", m->error.message);
    snprintf(out->path, sizeof out->path, "%s", m->path);
    out->size_bytes = m->on_disk ? m->size : 0;
    out->created = m->on_disk ? m->mtime : 0;
    if (m->dl != NULL)
        rt_download_progress_of(m->dl, &out->download_bytes, &out->download_total,
                                &out->download_rate);
    out->memory_bytes = m->weights_bytes + m->kv_bytes;
    out->active_jobs = m->running + m->queued;
    out->idle_s = m->state == RT_STATE_READY && m->running == 0 ? rt_now() - m->last_used : 0;
}

rt_status rt_list_models(rt_manager *rt, rt_model_info **out, size_t *n, rt_error *err) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&rt->mu);
    size_t count = 0;
    for (size_t i = 0; i < rt->n_models; i++) count += rt->models[i]->listed;
    rt_model_info *items = count > 0 ? calloc(count, sizeof *items) : NULL;
    if (count > 0 && items == NULL) {
        pthread_mutex_unlock(&rt->mu);
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < rt->n_models; i++)
        if (rt->models[i]->listed) fill_info_locked(rt->models[i], &items[k++]);
    pthread_mutex_unlock(&rt->mu);
    /* Sorted by type, then id. */
    for (size_t i = 1; i < k; i++) {
        rt_model_info tmp = items[i];
        size_t j = i;
        while (j > 0 && (items[j - 1].type > tmp.type ||
                         (items[j - 1].type == tmp.type && strcmp(items[j - 1].id, tmp.id) > 0))) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = tmp;
    }
    *out = items;
    *n = k;
    return RT_OK;
}

void rt_free_models(rt_model_info *models) {
    free(models);
}

rt_status rt_get_model(rt_manager *rt, const char *name, rt_model_info *out, rt_error *err) {
    rt_name parsed;
    rt_status st = rt_name_parse(name, &parsed, err);
    if (st != RT_OK) return st;
    pthread_mutex_lock(&rt->mu);
    const rt_model *m = rt_find_model_locked(rt, parsed.id);
    if (m != NULL && m->listed) fill_info_locked(m, out);
    pthread_mutex_unlock(&rt->mu);
    if (m == NULL || !m->listed)
        return rt_set_error(err, RT_ERR_MODEL_NOT_FOUND, 0, "model '%s' not found", parsed.id);
    return RT_OK;
}

/* The model to report for a type: the most recently used resident one, else the default. */
static const rt_model *shown_model_locked(const rt_manager *rt, rt_model_type type,
                                          int *loaded_count) {
    const rt_model *shown = NULL;
    *loaded_count = 0;
    for (size_t i = 0; i < rt->n_models; i++) {
        const rt_model *m = rt->models[i];
        if (m->name.type != type || m->handle == NULL) continue;
        (*loaded_count)++;
        if (shown == NULL || m->last_used > shown->last_used) shown = m;
    }
    if (shown != NULL) return shown;
    return type == RT_MODEL_LLM ? rt->default_llm : rt->default_whisper;
}

static void fill_runtime_locked(const rt_manager *rt, rt_model_type type, rt_runtime_health *out) {
    memset(out, 0, sizeof *out);
    const rt_model *m = shown_model_locked(rt, type, &out->loaded_count);
    if (m == NULL) return;
    out->configured = true;
    snprintf(out->model, sizeof out->model, "%s", m->name.id);
    out->state = m->state;
    if (m->error.status != RT_OK) snprintf(out->error, sizeof out->error, "%s", m->error.message);
    if (m->dl != NULL)
        rt_download_progress_of(m->dl, &out->download_bytes, &out->download_total,
                                &out->download_rate);
}

/* A default that cannot serve: failed, or missing with no way to fetch it. */
static bool default_broken(const rt_model *m) {
    if (m == NULL) return false;
    return m->state == RT_STATE_FAILED || (m->state == RT_STATE_ABSENT && m->error.status != RT_OK);
}

static void warmup_task_locked(const rt_manager *rt, char *buf, size_t size) {
    buf[0] = '\0';
    const rt_model *defaults[2] = {rt->default_whisper, rt->default_llm};
    for (int i = 0; i < 2; i++) {
        const rt_model *m = defaults[i];
        if (m == NULL || !m->warmup_pending) continue;
        if (m->state == RT_STATE_DOWNLOADING && m->dl != NULL) {
            uint64_t bytes, total;
            double rate;
            rt_download_progress_of(m->dl, &bytes, &total, &rate);
            snprintf(buf, size, "downloading %s (%.0f%%)", m->name.id,
                     total > 0 ? 100.0 * (double)bytes / (double)total : 0.0);
        } else {
            snprintf(buf, size, "%s %s",
                     m->state == RT_STATE_LOADING ? "loading" : "waiting to load", m->name.id);
        }
        return;
    }
}

void rt_health(rt_manager *rt, rt_health_info *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&rt->mu);
    fill_runtime_locked(rt, RT_MODEL_LLM, &out->llm);
    fill_runtime_locked(rt, RT_MODEL_WHISPER, &out->whisper);
    warmup_task_locked(rt, out->warmup_task, sizeof out->warmup_task);
    out->warming_up = out->warmup_task[0] != '\0';
    bool broken = default_broken(rt->default_llm) || default_broken(rt->default_whisper);
    out->status = out->warming_up ? RT_HEALTH_STARTING
                  : broken        ? RT_HEALTH_DEGRADED
                                  : RT_HEALTH_READY;
    out->memory_bytes = rt_memory_used_locked(rt);
    out->memory_limit_bytes =
        rt->cfg.max_memory_gb > 0 ? (uint64_t)(rt->cfg.max_memory_gb * 1e9) : 0;
    for (size_t i = 0; i < rt->n_models; i++) out->jobs_queued += rt->models[i]->queued;
    out->jobs_running = rt->jobs_running;
    pthread_mutex_unlock(&rt->mu);
    snprintf(out->device_requested, sizeof out->device_requested, "%s", rt->device_requested);
    snprintf(out->device_used, sizeof out->device_used, "CPU");
    snprintf(out->device_note, sizeof out->device_note, "%s", rt->device_note);
    out->uptime_s = rt_now() - rt->start_time;
    out->n_threads = rt->cfg.n_threads;
}

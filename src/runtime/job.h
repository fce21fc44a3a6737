/* Jobs: an owned copy of the request, a cancel flag and an event channel that the worker
 * (producer) fills and the HTTP side (consumer) drains with rt_job_next. */
#ifndef FLUID_RUNTIME_JOB_H
#define FLUID_RUNTIME_JOB_H

#include <stdatomic.h>
#include <stdbool.h>

#include "runtime/runtime.h"

typedef enum rt_job_kind { RT_JOB_CHAT, RT_JOB_TRANSCRIPTION } rt_job_kind;

typedef struct rt_model rt_model;

/* Creates a job holding deep copies of the request (one reference for the caller, one for the
 * worker). NULL when out of memory. */
rt_job *rt_job_new_chat(const rt_chat_request *req);
rt_job *rt_job_new_transcription(const rt_transcription_request *req);

rt_job_kind rt_job_kind_of(const rt_job *job);
/* The job's own copy of its request. */
const rt_chat_request *rt_job_chat(const rt_job *job);
const rt_transcription_request *rt_job_transcription(const rt_job *job);

bool rt_job_cancelled(const rt_job *job);
void rt_job_retain(rt_job *job);
void rt_job_set_model_id(rt_job *job, const char *id);

/* Producer side. Text events without logprobs that are not yet consumed are merged. Returns
 * false when out of memory (the job is then cancelled). */
bool rt_job_emit_text(rt_job *job, const char *text, size_t len, const rt_token_logprob *lp,
                      size_t n_lp);
bool rt_job_emit_segment(rt_job *job, const rt_segment *seg);

typedef struct rt_job_result {
    rt_finish_reason reason;
    rt_usage usage;
    const rt_error *error; /* for RT_FINISH_ERROR */
    const char *full_text; /* transcription */
    const char *language;  /* transcription */
    double duration;       /* transcription */
} rt_job_result;

/* Ends the job (only the first call counts). */
void rt_job_finish(rt_job *job, const rt_job_result *result);
void rt_job_fail(rt_job *job, const rt_error *error);
bool rt_job_is_finished(rt_job *job);

/* Queue bookkeeping, owned by the manager (under its lock). */
typedef struct rt_job_queue_entry {
    rt_job *next;
    double deadline; /* give up waiting for the model after this (rt_now seconds) */
} rt_job_queue_entry;
rt_job_queue_entry *rt_job_queue(rt_job *job);

#endif

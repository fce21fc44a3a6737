/* A transcription job: decode the uploaded audio, run Whisper, stream its segments. */
#include <stdlib.h>
#include <string.h>

#include "fluid/whisper.h"
#include "runtime/engine.h"
#include "runtime/common.h"

typedef struct asr {
    rt_job *job;
    bool want_segments;
    rt_word *words;
    size_t cap_words;
    bool oom;
} asr;

static bool on_segment(const fluid_whisper_segment *s, void *user) {
    asr *a = user;
    if (!a->want_segments) return !rt_job_cancelled(a->job);
    if (s->n_words > a->cap_words) {
        rt_word *grown = realloc(a->words, s->n_words * sizeof *grown);
        if (grown == NULL) {
            a->oom = true;
            return false;
        }
        a->words = grown;
        a->cap_words = s->n_words;
    }
    for (size_t i = 0; i < s->n_words; i++) {
        a->words[i].text = s->words[i].text;
        a->words[i].start = s->words[i].start;
        a->words[i].end = s->words[i].end;
        a->words[i].probability = s->words[i].probability;
    }
    rt_segment seg = {
        .id = s->id,
        .seek = s->seek,
        .start = s->start,
        .end = s->end,
        .text = s->text,
        .tokens = s->tokens,
        .n_tokens = s->n_tokens,
        .temperature = s->temperature,
        .avg_logprob = s->avg_logprob,
        .compression_ratio = s->compression_ratio,
        .no_speech_prob = s->no_speech_prob,
        .words = a->words,
        .n_words = s->n_words,
    };
    return rt_job_emit_segment(a->job, &seg) && !rt_job_cancelled(a->job);
}

static bool should_abort(void *user) {
    return rt_job_cancelled(((asr *)user)->job);
}

/* Engine errors about the input are the client's; the rest are ours. */
static rt_status status_of(fluid_status st) {
    return st == FLUID_ERR_FORMAT || st == FLUID_ERR_ARGUMENT || st == FLUID_ERR_UNSUPPORTED
               ? RT_ERR_BAD_REQUEST
               : RT_ERR_INTERNAL;
}

void rt_transcribe(void *model, rt_job *job, const rt_run_env *env) {
    const rt_transcription_request *req = rt_job_transcription(job);
    asr a = {.job = job, .want_segments = req->segments};
    rt_error error = {0};
    fluid_error ferr = {0};
    float *pcm = NULL;
    size_t n_samples = 0;
    fluid_whisper_result result = {0};
    rt_job_result r = {.reason = RT_FINISH_ERROR, .error = &error};
    /* The length limit is checked while decoding, so a small upload that would decode to
     * gigabytes (low bitrate, low sample rate) stops at the limit. */
    size_t max_samples =
        req->max_seconds > 0 ? (size_t)(req->max_seconds * FLUID_WHISPER_SAMPLE_RATE) : 0;
    fluid_status st =
        fluid_audio_decode_max(req->audio, req->audio_len, max_samples, &pcm, &n_samples, &ferr);
    if (st == FLUID_ERR_LIMIT) {
        rt_set_field_error(&error, "audio_too_long", "file",
                           "The audio is longer than %g seconds; this server transcribes at "
                           "most %g seconds per request.",
                           req->max_seconds, req->max_seconds);
        goto out;
    }
    if (st != FLUID_OK) {
        rt_set_error(&error, RT_ERR_BAD_REQUEST, 0, "cannot decode the audio: %s", ferr.message);
        goto out;
    }
    fluid_whisper_params params;
    fluid_whisper_params_defaults(&params);
    params.language = req->language;
    params.translate = req->translate;
    params.initial_prompt = req->prompt;
    params.temperature = req->temperature;
    /* As OpenAI's API: only temperature 0 falls back to hotter decodes on failure. */
    params.fallback = req->temperature <= 0;
    params.word_timestamps = req->word_timestamps;
    params.on_segment = on_segment;
    params.on_segment_user = &a;
    params.should_abort = should_abort;
    params.should_abort_user = &a;
    st = fluid_whisper_transcribe(model, env->pool, pcm, n_samples, &params, &result, &ferr);
    if (st == FLUID_ERR_CANCELLED || rt_job_cancelled(job)) {
        r.reason = a.oom ? RT_FINISH_ERROR : RT_FINISH_CANCELLED;
        if (a.oom) rt_set_error(&error, RT_ERR_INTERNAL, 0, "out of memory");
        goto out;
    }
    if (st != FLUID_OK) {
        rt_set_error(&error, status_of(st), 0, "transcription failed: %s", ferr.message);
        goto out;
    }
    r.reason = RT_FINISH_STOP;
    r.full_text = result.text != NULL ? result.text : "";
    r.language = result.language;
    r.duration = result.duration;
    r.usage.completion_tokens = (int)result.n_token_ids;
out:
    rt_job_finish(job, &r);
    fluid_whisper_result_free(&result);
    free(pcm);
    free(a.words);
}

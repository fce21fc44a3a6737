/* fluid-load: the requests, sent with libcurl's multi interface from one thread. At most
 * `concurrency` are in flight; each finished one is checked and counted, and a new one takes
 * its slot until the count or the time is used up. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid-load/load.h"
#include "util/buf.h"

#define MAX_BODY_BYTES (64u << 20)
#define MAX_AUDIO_BYTES (256u << 20)

/* What every request of the run shares: bodies built once, the audio file, headers. */
typedef struct load_shared {
    const load_options *o;
    char *chat_stream_body, *chat_body, *completion_body;
    char *audio;
    size_t audio_len;
    const char *audio_name;
    struct curl_slist *json_headers, *plain_headers;
} load_shared;

/* One request in flight. */
typedef struct load_slot {
    bool busy;
    load_kind kind;
    CURL *easy;
    curl_mime *mime;
    fl_buf body;
    bool body_too_big;
    load_sse sse;
    double start, first_token;
} load_slot;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- request bodies ---- */

static json_t *messages_json(const char *prompt) {
    return json_pack("[{s:s, s:s}]", "role", "user", "content", prompt);
}

/* Dumps doc after merging --body-extra into it (steals doc); NULL when memory ran out. The
 * options checked that --body-extra is a JSON object. */
static char *dump_with_extra(json_t *doc, const load_options *o) {
    json_t *extra = doc && o->body_extra ? json_loads(o->body_extra, 0, NULL) : NULL;
    bool ok = doc != NULL && (o->body_extra == NULL || json_object_update(doc, extra) == 0);
    char *text = ok ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(extra);
    json_decref(doc);
    return text;
}

static bool build_bodies(load_shared *sh) {
    const load_options *o = sh->o;
    if (!(o->mix[LOAD_CHAT_STREAM] || o->mix[LOAD_CHAT] || o->mix[LOAD_COMPLETION])) return true;
    sh->chat_stream_body = dump_with_extra(
        json_pack("{s:s, s:o, s:I, s:b, s:{s:b}}", "model", o->llm_model, "messages",
                  messages_json(o->prompt), "max_tokens", (json_int_t)o->max_tokens, "stream", 1,
                  "stream_options", "include_usage", 1),
        o);
    sh->chat_body = dump_with_extra(json_pack("{s:s, s:o, s:I}", "model", o->llm_model, "messages",
                                              messages_json(o->prompt), "max_tokens",
                                              (json_int_t)o->max_tokens),
                                    o);
    sh->completion_body =
        dump_with_extra(json_pack("{s:s, s:s, s:I}", "model", o->llm_model, "prompt", o->prompt,
                                  "max_tokens", (json_int_t)o->max_tokens),
                        o);
    if (sh->chat_stream_body && sh->chat_body && sh->completion_body) return true;
    fprintf(stderr, "fluid-load: cannot build the request bodies (is --prompt valid UTF-8?)\n");
    return false;
}

/* The audio file, read once (it is uploaded again and again). */
static bool read_audio(load_shared *sh) {
    const char *path = sh->o->audio_path;
    if (!sh->o->mix[LOAD_TRANSCRIPTION]) return true;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return false;
    }
    fl_buf b = {0};
    char chunk[65536];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        ok = b.len + n <= MAX_AUDIO_BYTES && fl_buf_append(&b, chunk, n);
    ok = ok && !ferror(f) && b.len > 0;
    fclose(f);
    if (!ok) {
        fprintf(stderr, "fluid-load: cannot read %s (empty, unreadable or over %u MiB)\n", path,
                MAX_AUDIO_BYTES >> 20);
        fl_buf_free(&b);
        return false;
    }
    sh->audio = fl_buf_take(&b, &sh->audio_len);
    const char *slash = strrchr(path, '/');
    sh->audio_name = slash ? slash + 1 : path;
    return sh->audio != NULL;
}

static struct curl_slist *headers_for(const load_options *o, bool json) {
    struct curl_slist *h = NULL, *next;
    /* no "Expect: 100-continue" round trip before uploads */
    if ((next = curl_slist_append(h, "Expect:")) == NULL) return NULL;
    h = next;
    if (json) {
        if ((next = curl_slist_append(h, "Content-Type: application/json")) == NULL) goto fail;
        h = next;
    }
    if (o->api_key != NULL) {
        fl_buf auth = {0};
        if (!fl_buf_printf(&auth, "Authorization: Bearer %s", o->api_key)) goto fail;
        next = curl_slist_append(h, auth.data);
        fl_buf_free(&auth);
        if (next == NULL) goto fail;
        h = next;
    }
    return h;
fail:
    curl_slist_free_all(h);
    return NULL;
}

static bool shared_init(load_shared *sh, const load_options *o) {
    *sh = (load_shared){.o = o};
    if (!build_bodies(sh) || !read_audio(sh)) return false;
    sh->json_headers = headers_for(o, true);
    sh->plain_headers = headers_for(o, false);
    if (sh->json_headers == NULL || sh->plain_headers == NULL) {
        fprintf(stderr, "fluid-load: out of memory\n");
        return false;
    }
    return true;
}

static void shared_free(load_shared *sh) {
    free(sh->chat_stream_body);
    free(sh->chat_body);
    free(sh->completion_body);
    free(sh->audio);
    curl_slist_free_all(sh->json_headers);
    curl_slist_free_all(sh->plain_headers);
}

/* ---- one request ---- */

static size_t on_data(char *bytes, size_t size, size_t count, void *user) {
    load_slot *slot = user;
    size_t n = size * count;
    if (slot->kind == LOAD_CHAT_STREAM) {
        if (!load_sse_feed(&slot->sse, bytes, n)) return 0; /* aborts the transfer */
        if (slot->sse.got_content) {
            slot->sse.got_content = false;
            slot->first_token = now_s();
        }
        return n;
    }
    if (slot->body.len + n > MAX_BODY_BYTES || !fl_buf_append(&slot->body, bytes, n)) {
        slot->body_too_big = true;
        return 0;
    }
    return n;
}

/* Adds a text part "name" = value (name_len bytes of name). */
static bool add_text_part(curl_mime *mime, const char *name, size_t name_len, const char *value) {
    curl_mimepart *part = curl_mime_addpart(mime);
    char field[128];
    if (part == NULL || name_len >= sizeof field) return false;
    memcpy(field, name, name_len);
    field[name_len] = '\0';
    return curl_mime_name(part, field) == CURLE_OK &&
           curl_mime_data(part, value, CURL_ZERO_TERMINATED) == CURLE_OK;
}

/* The multipart form of a transcription: file, model, response_format=json, --audio-field. */
static bool set_upload(load_slot *slot, const load_shared *sh) {
    const load_options *o = sh->o;
    slot->mime = curl_mime_init(slot->easy);
    curl_mimepart *file = slot->mime ? curl_mime_addpart(slot->mime) : NULL;
    bool ok = file != NULL && curl_mime_name(file, "file") == CURLE_OK &&
              curl_mime_filename(file, sh->audio_name) == CURLE_OK &&
              curl_mime_data(file, sh->audio, sh->audio_len) == CURLE_OK &&
              add_text_part(slot->mime, "model", 5, o->whisper_model) &&
              add_text_part(slot->mime, "response_format", 15, "json");
    for (int i = 0; ok && i < o->n_audio_fields; i++) {
        const char *eq = strchr(o->audio_fields[i], '=');
        ok = add_text_part(slot->mime, o->audio_fields[i], (size_t)(eq - o->audio_fields[i]),
                           eq + 1);
    }
    return ok && curl_easy_setopt(slot->easy, CURLOPT_MIMEPOST, slot->mime) == CURLE_OK;
}

/* Path and body of each kind (body NULL: a GET, or the multipart upload). */
static const char *request_path(load_kind kind) {
    switch (kind) {
    case LOAD_CHAT_STREAM:
    case LOAD_CHAT:
        return "/v1/chat/completions";
    case LOAD_COMPLETION:
        return "/v1/completions";
    case LOAD_TRANSCRIPTION:
        return "/v1/audio/transcriptions";
    default:
        return "/health";
    }
}

static const char *request_body(load_kind kind, const load_shared *sh) {
    switch (kind) {
    case LOAD_CHAT_STREAM:
        return sh->chat_stream_body;
    case LOAD_CHAT:
        return sh->chat_body;
    case LOAD_COMPLETION:
        return sh->completion_body;
    default:
        return NULL;
    }
}

static bool set_request(load_slot *slot, const load_shared *sh) {
    CURL *e = slot->easy;
    fl_buf url = {0};
    if (!fl_buf_printf(&url, "%s%s", sh->o->url, request_path(slot->kind))) return false;
    const char *body = request_body(slot->kind, sh);
    bool ok = curl_easy_setopt(e, CURLOPT_URL, url.data) == CURLE_OK; /* curl copies it */
    fl_buf_free(&url);
    ok = ok && curl_easy_setopt(e, CURLOPT_PRIVATE, slot) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_WRITEDATA, slot) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOPROXY, "*") == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(sh->o->timeout_s * 1000)) == CURLE_OK &&
         curl_easy_setopt(e, CURLOPT_HTTPHEADER, body ? sh->json_headers : sh->plain_headers) ==
             CURLE_OK;
    if (ok && body != NULL) ok = curl_easy_setopt(e, CURLOPT_POSTFIELDS, body) == CURLE_OK;
    if (ok && slot->kind == LOAD_TRANSCRIPTION) ok = set_upload(slot, sh);
    return ok;
}

static void slot_clear(load_slot *slot) {
    curl_easy_cleanup(slot->easy);
    curl_mime_free(slot->mime);
    fl_buf_free(&slot->body);
    load_sse_free(&slot->sse);
    *slot = (load_slot){0};
}

static bool slot_start(load_slot *slot, load_kind kind, const load_shared *sh, CURLM *multi) {
    *slot = (load_slot){.busy = true, .kind = kind, .start = now_s()};
    load_sse_init(&slot->sse);
    slot->easy = curl_easy_init();
    if (slot->easy != NULL && set_request(slot, sh) &&
        curl_multi_add_handle(multi, slot->easy) == CURLM_OK)
        return true;
    slot_clear(slot);
    fprintf(stderr, "fluid-load: cannot set up a request (out of memory?)\n");
    return false;
}

/* The server's error message from an OpenAI error body, or "". */
static void error_message(const fl_buf *body, char *out, size_t size) {
    json_t *doc = body->data ? json_loadb(body->data, body->len, JSON_ALLOW_NUL, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    snprintf(out, size, "%s", msg ? msg : "");
    json_decref(doc);
}

/* Checks the finished request and counts it. */
static void slot_finish(load_slot *slot, CURLcode result, load_report *r) {
    load_kind_stats *k = &r->kinds[slot->kind];
    const char *name = load_kind_name(slot->kind);
    double end = now_s();
    long status = 0, tokens = 0;
    char why[200] = "";
    curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
    k->requests++;
    load_samples_add(&k->latency_ms, (end - slot->start) * 1000);
    if (slot->sse.bad || slot->body_too_big) {
        k->malformed++;
        load_note_error(r, "%s", slot->sse.bad ? slot->sse.why : "response body over 64 MiB");
    } else if (result != CURLE_OK) {
        k->transport++;
        load_note_error(r, "%s: transport: %s", name, curl_easy_strerror(result));
    } else if (status < 200 || status > 299) {
        k->http[status > 0 && status < LOAD_HTTP_STATUS_MAX ? status : 0]++;
        error_message(&slot->body, why, sizeof why);
        load_note_error(r, "%s: HTTP %ld %s", name, status, why);
    } else if (slot->kind == LOAD_CHAT_STREAM) {
        if (!load_sse_finish(&slot->sse)) {
            k->malformed++;
            load_note_error(r, "%s", slot->sse.why);
            return;
        }
        k->tokens +=
            slot->sse.usage_tokens >= 0 ? slot->sse.usage_tokens : slot->sse.content_chunks;
        if (slot->first_token > 0)
            load_samples_add(&k->ttft_ms, (slot->first_token - slot->start) * 1000);
    } else if (!load_check_json_body(slot->kind, slot->body.data ? slot->body.data : "",
                                     slot->body.len, &tokens, why, sizeof why)) {
        k->malformed++;
        load_note_error(r, "%s", why);
    } else {
        k->tokens += tokens;
    }
}

/* ---- the run ---- */

/* The order of kinds: smooth weighted round robin over the --mix weights, so kinds interleave
 * (chat-stream=2,health=1 gives stream, health, stream, ...). Returns the cycle length. */
static int build_schedule(const int mix[LOAD_KIND_COUNT], load_kind *schedule, int cap) {
    int total = 0, current[LOAD_KIND_COUNT] = {0};
    for (int k = 0; k < LOAD_KIND_COUNT; k++) total += mix[k];
    if (total > cap) return -1;
    for (int i = 0; i < total; i++) {
        int best = -1;
        for (int k = 0; k < LOAD_KIND_COUNT; k++) {
            current[k] += mix[k];
            if (mix[k] > 0 && (best < 0 || current[k] > current[best])) best = k;
        }
        current[best] -= total;
        schedule[i] = (load_kind)best;
    }
    return total;
}

typedef struct load_state {
    const load_options *o;
    load_shared shared;
    CURLM *multi;
    load_slot *slots;
    load_kind schedule[LOAD_KIND_COUNT * 1000];
    int schedule_len;
    long started, running;
    double t0, next_progress, next_peak;
} load_state;

static bool may_start(const load_state *st, double t) {
    return (st->o->requests == 0 || st->started < st->o->requests) &&
           (st->o->duration_s == 0 || t - st->t0 < st->o->duration_s);
}

static bool fill_slots(load_state *st) {
    for (long i = 0; i < st->o->concurrency && may_start(st, now_s()); i++) {
        if (st->slots[i].busy) continue;
        load_kind kind = st->schedule[st->started % st->schedule_len];
        if (!slot_start(&st->slots[i], kind, &st->shared, st->multi)) return false;
        st->started++;
        st->running++;
    }
    return true;
}

static void collect_finished(load_state *st, load_report *r) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(st->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        load_slot *slot = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
        CURLcode result = msg->data.result;
        curl_multi_remove_handle(st->multi, msg->easy_handle);
        slot_finish(slot, result, r);
        slot_clear(slot);
        st->running--;
    }
}

/* Memory peak every half second, curve point and progress line every --interval. */
static bool tick(load_state *st, load_report *r, double t) {
    bool ok = true;
    bool progress = t >= st->next_progress;
    if (st->o->server_pid && (t >= st->next_peak || progress)) {
        long kib;
        ok = load_memory_sample(&r->memory, t - st->t0, progress, &kib);
        st->next_peak = t + 0.5;
    }
    if (progress) {
        long done = 0;
        for (int k = 0; k < LOAD_KIND_COUNT; k++) done += r->kinds[k].requests;
        fprintf(stderr, "[%6.0f s] %ld done, %ld failed, %ld in flight", t - st->t0, done,
                load_total_failures(r), st->running);
        if (st->o->server_pid && r->memory.n_curve > 0 && !r->memory.gone)
            fprintf(stderr, ", server RSS %.1f MiB",
                    r->memory.curve[r->memory.n_curve - 1].kib / 1024.0);
        fprintf(stderr, "\n");
        st->next_progress += st->o->interval_s;
    }
    return ok;
}

static bool run_loop(load_state *st, load_report *r) {
    while (true) {
        if (!fill_slots(st)) return false;
        if (st->running == 0 && !may_start(st, now_s())) return true;
        int active = 0;
        if (curl_multi_perform(st->multi, &active) != CURLM_OK) return false;
        collect_finished(st, r);
        if (!tick(st, r, now_s())) return false;
        if (st->running > 0 && curl_multi_poll(st->multi, NULL, 0, 100, NULL) != CURLM_OK)
            return false;
    }
}

/* The first point of the memory curve, at t = 0. */
static bool memory_start(load_state *st, load_report *r) {
    r->memory = (load_memory){
        .pid = st->o->server_pid, .before_kib = -1, .after_kib = -1, .hwm_after_kib = -1};
    if (st->o->server_pid == 0) return true;
    bool ok = load_memory_sample(&r->memory, 0, true, &r->memory.before_kib);
    if (r->memory.before_kib < 0)
        fprintf(stderr, "fluid-load: warning: cannot read /proc/%ld/status\n", st->o->server_pid);
    return ok;
}

/* The last point, once every request has finished. */
static bool memory_end(load_state *st, load_report *r, double t) {
    if (st->o->server_pid == 0) return true;
    r->memory.hwm_after_kib = load_read_status_kib(st->o->server_pid, "VmHWM");
    return load_memory_sample(&r->memory, t - st->t0, true, &r->memory.after_kib);
}

bool load_run(const load_options *o, load_report *r) {
    load_state *st = calloc(1, sizeof *st);
    if (st == NULL) return false;
    st->o = o;
    bool ok = false;
    st->schedule_len = build_schedule(o->mix, st->schedule, LOAD_KIND_COUNT * 1000);
    st->slots = calloc((size_t)o->concurrency, sizeof *st->slots);
    st->multi = curl_multi_init();
    if (st->slots == NULL || st->multi == NULL || st->schedule_len <= 0)
        fprintf(stderr, "fluid-load: out of memory\n");
    else if (shared_init(&st->shared, o)) {
        st->t0 = st->next_peak = now_s();
        st->next_progress = st->t0 + o->interval_s;
        ok = memory_start(st, r) && run_loop(st, r);
        double end = now_s();
        r->wall_s = end - st->t0;
        ok = memory_end(st, r, end) && ok;
        if (!ok) fprintf(stderr, "fluid-load: the run stopped early (out of memory?)\n");
    }
    for (long i = 0; st->slots != NULL && i < o->concurrency; i++)
        if (st->slots[i].busy) {
            curl_multi_remove_handle(st->multi, st->slots[i].easy);
            slot_clear(&st->slots[i]);
        }
    curl_multi_cleanup(st->multi);
    free(st->slots);
    shared_free(&st->shared);
    free(st);
    return ok;
}

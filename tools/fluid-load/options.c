/* fluid-load command line. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid-load/load.h"

static const char *const kind_names[LOAD_KIND_COUNT] = {
    "chat-stream", "chat", "completion", "transcription", "health",
};

const char *load_kind_name(load_kind kind) {
    return kind >= 0 && kind < LOAD_KIND_COUNT ? kind_names[kind] : "?";
}

static void print_usage(FILE *out) {
    fprintf(out,
            "fluid-load: a bounded load test for a fluid-server on this machine.\n"
            "Only loopback servers are accepted (127.0.0.1, localhost, ::1).\n"
            "\n"
            "usage: fluid-load [options]\n"
            "  --url URL              server base URL (default http://127.0.0.1:3847)\n"
            "  -c, --concurrency N    requests in flight at once (default 4)\n"
            "  -n, --requests N       total requests to send (default 100 when no --duration)\n"
            "  -d, --duration SEC     keep starting requests for SEC seconds, then let the\n"
            "                         ones in flight finish; with -n, whichever comes first\n"
            "  --mix SPEC             request kinds and weights, e.g. chat-stream=3,health=1\n"
            "                         kinds: chat-stream, chat, completion, transcription,\n"
            "                         health (default health=1)\n"
            "  --model NAME           model of chat and completion requests\n"
            "  --whisper-model NAME   model of transcriptions (default whisper-1)\n"
            "  --audio FILE           audio file uploaded by transcriptions (e.g. a WAV)\n"
            "  --audio-field NAME=VALUE  another form field of transcriptions, e.g.\n"
            "                         temperature=0.2 (repeatable, at most 8)\n"
            "  --prompt TEXT          user message / prompt (default \"Hello\")\n"
            "  --max-tokens N         max_tokens of chat and completion requests (default 16)\n"
            "  --body-extra JSON      JSON object merged into chat and completion bodies,\n"
            "                         e.g. '{\"temperature\":0}'\n"
            "  --api-key KEY          send Authorization: Bearer KEY (default $FLUID_API_KEY)\n"
            "  --server-pid PID       read the server's resident memory (VmRSS) before,\n"
            "                         during and after the run\n"
            "  --interval SEC         progress line (stderr) and memory curve period\n"
            "                         (default 30)\n"
            "  --timeout SEC          per request (default 300)\n"
            "  --json                 print the report as JSON\n"
            "  -h, --help             this text\n"
            "\n"
            "Chat streams are counted in tokens with time to first token (TTFT). The report\n"
            "gives requests, failures (HTTP status / transport / malformed response) and\n"
            "latency percentiles per kind, throughput and the server's memory.\n"
            "Exit status: 0 when every request passed, 1 when any failed, 2 on a usage error.\n");
}

static bool parse_long(const char *s, long min, long max, long *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) return false;
    *out = v;
    return true;
}

static bool parse_seconds(const char *s, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= 0) || v > 1e7) return false;
    *out = v;
    return true;
}

static int kind_by_name(const char *name, size_t len) {
    for (int k = 0; k < LOAD_KIND_COUNT; k++)
        if (strlen(kind_names[k]) == len && strncmp(kind_names[k], name, len) == 0) return k;
    return -1;
}

/* "kind=weight,kind=weight" (a kind without "=weight" weighs 1). */
static bool parse_mix(const char *spec, int mix[LOAD_KIND_COUNT]) {
    memset(mix, 0, sizeof(int) * LOAD_KIND_COUNT);
    const char *p = spec;
    while (*p != '\0') {
        size_t item = strcspn(p, ",");
        size_t name_len = strcspn(p, ",=");
        int kind = kind_by_name(p, name_len);
        if (kind < 0) {
            fprintf(stderr, "fluid-load: unknown request kind '%.*s' in --mix\n", (int)name_len, p);
            return false;
        }
        long weight = 1;
        if (name_len < item) {
            char num[16] = {0};
            size_t num_len = item - name_len - 1;
            if (num_len == 0 || num_len >= sizeof num ||
                !parse_long(memcpy(num, p + name_len + 1, num_len), 0, 1000, &weight)) {
                fprintf(stderr, "fluid-load: bad weight for '%s' in --mix (0..1000)\n",
                        kind_names[kind]);
                return false;
            }
        }
        mix[kind] = (int)weight;
        p += item;
        if (*p == ',') p++;
    }
    for (int k = 0; k < LOAD_KIND_COUNT; k++)
        if (mix[k] > 0) return true;
    fprintf(stderr, "fluid-load: --mix gives no request kind a weight\n");
    return false;
}

static bool is_loopback_host(const char *host) {
    return strcmp(host, "127.0.0.1") == 0 || strcasecmp(host, "localhost") == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* Only http:// on the loopback interface: this tool must never load someone else's server. */
static bool check_url(const char *url) {
    CURLU *u = curl_url();
    if (u == NULL) {
        fprintf(stderr, "fluid-load: out of memory\n");
        return false;
    }
    char *scheme = NULL, *host = NULL;
    bool ok = false;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        fprintf(stderr, "fluid-load: cannot parse the URL '%s'\n", url);
    else if (strcmp(scheme, "http") != 0)
        fprintf(stderr, "fluid-load: only http:// URLs are supported, not '%s'\n", scheme);
    else if (!is_loopback_host(host))
        fprintf(stderr,
                "fluid-load: refusing host '%s': fluid-load only loads a server on this "
                "machine (127.0.0.1, localhost or ::1)\n",
                host);
    else
        ok = true;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

static bool check_combination(load_options *o) {
    bool llm = o->mix[LOAD_CHAT_STREAM] || o->mix[LOAD_CHAT] || o->mix[LOAD_COMPLETION];
    if (llm && o->llm_model == NULL) {
        fprintf(stderr, "fluid-load: --mix has chat or completion requests: give --model\n");
        return false;
    }
    if (o->mix[LOAD_TRANSCRIPTION] && o->audio_path == NULL) {
        fprintf(stderr, "fluid-load: --mix has transcriptions: give --audio FILE\n");
        return false;
    }
    if (o->body_extra != NULL) {
        json_t *extra = json_loads(o->body_extra, 0, NULL);
        bool is_object = json_is_object(extra);
        json_decref(extra);
        if (!is_object) {
            fprintf(stderr, "fluid-load: --body-extra must be a JSON object\n");
            return false;
        }
    }
    if (o->requests == 0 && o->duration_s == 0) o->requests = 100;
    return check_url(o->url);
}

enum {
    OPT_URL = 256,
    OPT_MIX,
    OPT_MODEL,
    OPT_WHISPER_MODEL,
    OPT_AUDIO,
    OPT_AUDIO_FIELD,
    OPT_PROMPT,
    OPT_MAX_TOKENS,
    OPT_BODY_EXTRA,
    OPT_API_KEY,
    OPT_SERVER_PID,
    OPT_INTERVAL,
    OPT_TIMEOUT,
    OPT_JSON,
};

static const struct option long_options[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"concurrency", required_argument, NULL, 'c'},
    {"requests", required_argument, NULL, 'n'},
    {"duration", required_argument, NULL, 'd'},
    {"mix", required_argument, NULL, OPT_MIX},
    {"model", required_argument, NULL, OPT_MODEL},
    {"whisper-model", required_argument, NULL, OPT_WHISPER_MODEL},
    {"audio", required_argument, NULL, OPT_AUDIO},
    {"audio-field", required_argument, NULL, OPT_AUDIO_FIELD},
    {"prompt", required_argument, NULL, OPT_PROMPT},
    {"max-tokens", required_argument, NULL, OPT_MAX_TOKENS},
    {"body-extra", required_argument, NULL, OPT_BODY_EXTRA},
    {"api-key", required_argument, NULL, OPT_API_KEY},
    {"server-pid", required_argument, NULL, OPT_SERVER_PID},
    {"interval", required_argument, NULL, OPT_INTERVAL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool add_audio_field(const char *arg, load_options *o) {
    const char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || o->n_audio_fields == LOAD_MAX_AUDIO_FIELDS) return false;
    o->audio_fields[o->n_audio_fields++] = arg;
    return true;
}

/* Applies one option; false on a bad value. */
static bool apply_option(int opt, const char *arg, load_options *o) {
    switch (opt) {
    case OPT_URL:
        o->url = arg;
        return true;
    case 'c':
        return parse_long(arg, 1, 1024, &o->concurrency);
    case 'n':
        return parse_long(arg, 0, 1000000000L, &o->requests);
    case 'd':
        return parse_seconds(arg, &o->duration_s);
    case OPT_MIX:
        return parse_mix(arg, o->mix);
    case OPT_MODEL:
        o->llm_model = arg;
        return true;
    case OPT_WHISPER_MODEL:
        o->whisper_model = arg;
        return true;
    case OPT_AUDIO:
        o->audio_path = arg;
        return true;
    case OPT_AUDIO_FIELD:
        return add_audio_field(arg, o);
    case OPT_PROMPT:
        o->prompt = arg;
        return true;
    case OPT_MAX_TOKENS:
        return parse_long(arg, 1, 1000000, &o->max_tokens);
    case OPT_BODY_EXTRA:
        o->body_extra = arg;
        return true;
    case OPT_API_KEY:
        o->api_key = arg;
        return true;
    case OPT_SERVER_PID:
        return parse_long(arg, 1, 1L << 30, &o->server_pid);
    case OPT_INTERVAL:
        return parse_seconds(arg, &o->interval_s) && o->interval_s > 0;
    case OPT_TIMEOUT:
        return parse_seconds(arg, &o->timeout_s) && o->timeout_s > 0;
    case OPT_JSON:
        o->json = true;
        return true;
    default:
        return false;
    }
}

int load_parse_options(int argc, char **argv, load_options *o) {
    *o = (load_options){
        .url = "http://127.0.0.1:3847",
        .concurrency = 4,
        .whisper_model = "whisper-1",
        .prompt = "Hello",
        .max_tokens = 16,
        .api_key = getenv("FLUID_API_KEY"),
        .interval_s = 30,
        .timeout_s = 300,
    };
    o->mix[LOAD_HEALTH] = 1;
    if (o->api_key != NULL && o->api_key[0] == '\0') o->api_key = NULL;
    int opt;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:n:d:h", long_options, NULL)) != -1) {
        if (opt == 'h') {
            print_usage(stdout);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            fprintf(stderr, "fluid-load: unknown option or missing value: %s (see --help)\n",
                    argv[optind - 1]);
            return -1;
        }
        if (!apply_option(opt, optarg, o)) {
            if (opt != OPT_MIX)
                fprintf(stderr, "fluid-load: bad value '%s' for %s (see --help)\n", optarg,
                        argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fluid-load: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    size_t len = strlen(o->url);
    if (len > 0 && o->url[len - 1] == '/') {
        fprintf(stderr, "fluid-load: give --url without a trailing '/'\n");
        return -1;
    }
    return check_combination(o) ? 0 : -1;
}

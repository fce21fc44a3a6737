#include "server/config.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fluid/fluid.h"
#include "util/log.h"

typedef enum opt_kind { OPT_STRING, OPT_INT, OPT_DOUBLE, OPT_FLAG, OPT_HELP, OPT_VERSION } opt_kind;

typedef struct opt_spec {
    const char *group; /* printed as a heading when it changes */
    const char *flag;
    const char *env;
    opt_kind kind;
    size_t offset; /* into fs_config */
    size_t size;   /* of a string field */
    double min, max;
    const char *def; /* the default, as it would be written after the flag; NULL: 0 or "" */
    const char *metavar;
    const char *help;
} opt_spec;

#define STR(field, def)                                                                            \
    OPT_STRING, offsetof(fs_config, field), sizeof(((fs_config *)0)->field), 0, 0, def
#define INT(field, lo, hi, def) OPT_INT, offsetof(fs_config, field), 0, lo, hi, def
#define DBL(field, lo, hi, def) OPT_DOUBLE, offsetof(fs_config, field), 0, lo, hi, def
#define FLAG(field) OPT_FLAG, offsetof(fs_config, field), 0, 0, 0, NULL

static const opt_spec options[] = {
    {"Server", "--host", "FLUID_HOST", STR(host, "127.0.0.1"), "ADDR", "address to listen on"},
    {"Server", "--port", "FLUID_PORT", INT(port, 0, 65535, "3847"), "N",
     "port to listen on; 0 picks a free port and prints it"},
    {"Server", "--api-key", "FLUID_API_KEY", STR(api_key, NULL), "KEY",
     "require 'Authorization: Bearer KEY' on every /v1 route"},
    {"Server", "--cors-origin", "FLUID_CORS_ORIGIN", STR(cors_origin, "*"), "ORIGINS",
     "allowed browser origins: '*' or a comma-separated list"},
    {"Server", "--max-body-mb", "FLUID_MAX_BODY_MB", INT(max_body_mb, 1, 1024, "25"), "MB",
     "largest request body accepted"},
    {"Server", "--max-connections", "FLUID_MAX_CONNECTIONS", INT(max_connections, 1, 4096, "64"),
     "N", "most client connections at once"},
    {"Server", "--client-timeout", "FLUID_CLIENT_TIMEOUT", INT(client_timeout_s, 1, 3600, "60"),
     "S", "most time to send a request, and most silence, on a connection"},
    {"Server", "--shutdown-timeout", "FLUID_SHUTDOWN_TIMEOUT",
     INT(shutdown_timeout_s, 0, 3600, "30"), "S",
     "at SIGTERM/SIGINT, time given to requests in flight"},
    {"Server", "--keepalive", "FLUID_KEEPALIVE", INT(keepalive_s, 1, 600, "10"), "S",
     "send an SSE keep-alive comment after this long without output"},
    {"Models", "--model-path", "FLUID_MODEL_PATH", STR(model_path, "./models"), "DIR",
     "folder with llm/ and whisper/ model folders"},
    {"Models", "--cache-dir", "FLUID_CACHE_DIR", STR(cache_dir, NULL), "DIR",
     "folder for downloads in progress and caches (<model-path>/cache)"},
    {"Models", "--llm-model", "FLUID_LLM_MODEL", STR(llm_model, NULL), "NAME",
     "default language model: a file under llm/, owner/repo/file.gguf, or none"},
    {"Models", "--whisper-model", "FLUID_WHISPER_MODEL", STR(whisper_model, NULL), "NAME",
     "default Whisper model: whisper-<name> (whisper/ggml-<name>.bin), or none"},
    {"Models", "--device", "FLUID_DEVICE", STR(device, "auto"), "DEV",
     "auto, cpu, gpu or npu; this build computes on the CPU"},
    {"Models", "--no-warm-up", "FLUID_NO_WARM_UP", FLAG(no_warm_up), NULL,
     "do not load the default models at start-up (load on first request)"},
    {"Models", "--no-download", "FLUID_NO_DOWNLOAD", FLAG(no_download), NULL,
     "never download models; use only what is on disk"},
    {"Resources", "--idle-timeout", "FLUID_IDLE_TIMEOUT", DBL(idle_timeout_min, 0, 1e6, "5"), "MIN",
     "unload a model unused this many minutes; 0 = never"},
    {"Resources", "--idle-check-interval", "FLUID_IDLE_CHECK_INTERVAL",
     DBL(idle_check_interval_s, 0.01, 86400, "60"), "S", "how often idle models are looked for"},
    {"Resources", "--max-memory", "FLUID_MAX_MEMORY", DBL(max_memory_gb, 0, 1e6, NULL), "GB",
     "memory budget for loaded models (0 = no limit)"},
    {"Resources", "--max-models-per-type", "FLUID_MAX_MODELS_PER_TYPE",
     INT(max_models_per_type, 1, 64, "1"), "N", "models of one type kept loaded at once"},
    {"Resources", "--threads", "FLUID_THREADS", INT(threads, 0, 1024, NULL), "N",
     "compute threads (0 = one per core)"},
    {"Resources", "--queue-size", "FLUID_QUEUE_SIZE", INT(queue_size, 1, 4096, "8"), "N",
     "requests waiting per model before 429"},
    {"Resources", "--ctx-size", "FLUID_CTX_SIZE", INT(ctx_size, 0, 1 << 20, NULL), "N",
     "context length of a chat (0 = the model's, at most 4096)"},
    {"Limits", "--max-tokens-limit", "FLUID_MAX_TOKENS_LIMIT",
     INT(max_tokens_limit, 1, 131072, "4096"), "N",
     "most tokens one request may generate; also the default when it names none"},
    {"Limits", "--max-messages", "FLUID_MAX_MESSAGES", INT(max_messages, 1, 100000, "1024"), "N",
     "most messages in one chat request"},
    {"Limits", "--max-input-kb", "FLUID_MAX_INPUT_KB", INT(max_input_kb, 1, 1 << 20, "1024"), "KB",
     "most text in one request's messages or prompt"},
    {"Limits", "--max-audio-seconds", "FLUID_MAX_AUDIO_SECONDS",
     DBL(max_audio_seconds, 1, 86400, "1800"), "S",
     "longest audio one transcription may hold; the upload size is --max-body-mb"},
    {"Logging", "--log-level", "FLUID_LOG_LEVEL", STR(log_level, "info"), "LEVEL",
     "debug, info, warning or error"},
    {"Other", "--help", NULL, OPT_HELP, 0, 0, 0, 0, NULL, NULL, "show this help and exit"},
    {"Other", "--version", NULL, OPT_VERSION, 0, 0, 0, 0, NULL, NULL, "show the version and exit"},
};

#define N_OPTIONS (sizeof options / sizeof options[0])

void fs_config_print_help(FILE *out) {
    fprintf(out, "Usage: fluid-server [OPTIONS]\n\nAn OpenAI-compatible local AI server.\n"
                 "Every option can also be set with the environment variable shown; the option "
                 "wins.\n");
    const char *group = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_spec *o = &options[i];
        if (group == NULL || strcmp(group, o->group) != 0) {
            group = o->group;
            fprintf(out, "\n%s:\n", group);
        }
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->flag, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-28s %s", left, o->help);
        if (o->def != NULL) fprintf(out, " (%s)", o->def);
        if (o->env != NULL) fprintf(out, " [%s]", o->env);
        fputc('\n', out);
    }
}

static bool parse_flag_value(const char *v, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcasecmp(v, yes[i]) == 0) return *out = true, true;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcasecmp(v, no[i]) == 0) return *out = false, true;
    return false;
}

/* Stores value into the field of o; source names where it came from for the message. */
static bool set_option(fs_config *cfg, const opt_spec *o, const char *value, const char *source,
                       FILE *err) {
    char *field = (char *)cfg + o->offset;
    char *end = NULL;
    errno = 0;
    switch (o->kind) {
    case OPT_STRING:
        if (strlen(value) >= o->size) {
            fprintf(err, "fluid-server: %s: value is too long (at most %zu bytes)\n", source,
                    o->size - 1);
            return false;
        }
        memcpy(field, value, strlen(value) + 1);
        return true;
    case OPT_INT: {
        long v = strtol(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0' || v < o->min || v > o->max) {
            fprintf(err, "fluid-server: %s: '%s' is not a whole number from %.0f to %.0f\n", source,
                    value, o->min, o->max);
            return false;
        }
        *(int *)field = (int)v;
        return true;
    }
    case OPT_DOUBLE: {
        double v = strtod(value, &end);
        if (errno != 0 || end == value || *end != '\0' || !isfinite(v) || v < o->min ||
            v > o->max) {
            fprintf(err, "fluid-server: %s: '%s' is not a number from %g to %g\n", source, value,
                    o->min, o->max);
            return false;
        }
        *(double *)field = v;
        return true;
    }
    case OPT_FLAG:
        if (!parse_flag_value(value, (bool *)field)) {
            fprintf(err, "fluid-server: %s: '%s' is not true/false/1/0\n", source, value);
            return false;
        }
        return true;
    default:
        return false;
    }
}

void fs_config_defaults(fs_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    /* The defaults are constants that parse (test_server checks them): no error to report. */
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].def != NULL) set_option(cfg, &options[i], options[i].def, "default", stderr);
}

static const opt_spec *find_flag(const char *arg, size_t len) {
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].flag) == len && strncmp(options[i].flag, arg, len) == 0)
            return &options[i];
    return NULL;
}

/* Checks the values that depend on each other or on a fixed set of words. */
static bool validate(const fs_config *cfg, FILE *err) {
    fl_log_level level;
    if (!fl_log_parse_level(cfg->log_level, &level)) {
        fprintf(err, "fluid-server: --log-level: '%s' is not debug, info, warning or error\n",
                cfg->log_level);
        return false;
    }
    static const char *const devices[] = {"auto", "cpu", "gpu", "npu"};
    bool known = false;
    for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
        known = known || strcasecmp(cfg->device, devices[i]) == 0;
    if (!known) {
        fprintf(err, "fluid-server: --device: '%s' is not auto, cpu, gpu or npu\n", cfg->device);
        return false;
    }
    if (cfg->host[0] == '\0') {
        fprintf(err, "fluid-server: --host: must not be empty\n");
        return false;
    }
    return true;
}

fs_config_result fs_config_parse(fs_config *cfg, int argc, char **argv,
                                 const char *(*get_env)(const char *name), FILE *out, FILE *err) {
    for (size_t i = 0; get_env != NULL && i < N_OPTIONS; i++) {
        const char *v = options[i].env ? get_env(options[i].env) : NULL;
        if (v != NULL && !set_option(cfg, &options[i], v, options[i].env, err))
            return FS_CONFIG_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq = strchr(arg, '=');
        size_t name_len = eq ? (size_t)(eq - arg) : strlen(arg);
        const opt_spec *o = strncmp(arg, "--", 2) == 0 ? find_flag(arg, name_len) : NULL;
        if (o == NULL) {
            fprintf(err, "fluid-server: unknown option '%s' (see --help)\n", arg);
            return FS_CONFIG_ERROR;
        }
        if (o->kind == OPT_HELP) {
            fs_config_print_help(out);
            return FS_CONFIG_EXIT;
        }
        if (o->kind == OPT_VERSION) {
            fprintf(out, "fluid-server %s\n", fluid_version());
            return FS_CONFIG_EXIT;
        }
        const char *value;
        if (eq != NULL) {
            value = eq + 1;
        } else if (o->kind == OPT_FLAG) {
            value = "1";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            fprintf(err, "fluid-server: %s needs a value (see --help)\n", o->flag);
            return FS_CONFIG_ERROR;
        }
        if (!set_option(cfg, o, value, o->flag, err)) return FS_CONFIG_ERROR;
    }
    return validate(cfg, err) ? FS_CONFIG_RUN : FS_CONFIG_ERROR;
}

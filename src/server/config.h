/* fluid-server's settings: defaults, FLUID_* environment variables, then command-line flags
 * (a flag wins over its variable). */
#ifndef FLUID_SERVER_CONFIG_H
#define FLUID_SERVER_CONFIG_H

#include <stdbool.h>
#include <stdio.h>

typedef struct fs_config {
    /* network */
    char host[256];
    int port;
    char api_key[256];
    char cors_origin[1024]; /* "*" or a comma-separated list of origins */
    int max_body_mb;
    int max_connections;
    int client_timeout_s;   /* to send a whole request; also the most silence on a connection */
    int shutdown_timeout_s; /* grace period for requests in flight at SIGTERM/SIGINT */
    int keepalive_s;        /* SSE comment after this many seconds without an event */
    /* models */
    char model_path[4096];
    char cache_dir[4096];    /* "" = <model_path>/cache */
    char llm_model[512];     /* "" = the built-in default, "none" = no default */
    char whisper_model[512]; /* likewise */
    char device[16];
    bool no_warm_up;
    bool no_download;
    /* resources */
    double idle_timeout_min;
    double idle_check_interval_s;
    double max_memory_gb;
    int max_models_per_type;
    int threads;
    int queue_size;
    int ctx_size;
    /* per-request limits */
    int max_tokens_limit;
    int max_messages;
    int max_input_kb;
    double max_audio_seconds;
    /* logging */
    char log_level[16];
} fs_config;

typedef enum fs_config_result {
    FS_CONFIG_RUN,   /* start the server */
    FS_CONFIG_EXIT,  /* --help or --version was printed: exit 0 */
    FS_CONFIG_ERROR, /* a message was printed: exit 2 */
} fs_config_result;

void fs_config_defaults(fs_config *cfg);

/* Fills cfg from getenv-style lookup (may be NULL: no environment) and argv. Help and version
 * go to out, errors to err. */
fs_config_result fs_config_parse(fs_config *cfg, int argc, char **argv,
                                 const char *(*get_env)(const char *name), FILE *out, FILE *err);

void fs_config_print_help(FILE *out);

#endif

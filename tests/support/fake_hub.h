/* Runs tests/tools/fake_hub.py (a fake Hugging Face Hub on 127.0.0.1) for the download and
 * runtime tests, and talks to its control endpoints. */
#ifndef FLUID_TESTS_FAKE_HUB_H
#define FLUID_TESTS_FAKE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct fake_hub {
    pid_t pid;
    int stdin_fd; /* closing it stops the server */
    int port;
    char root[256]; /* the folder it serves (a fresh temporary folder) */
    char url[64];   /* http://127.0.0.1:<port> */
} fake_hub;

/* Starts the server on a fresh temporary folder. False (with a message) when python or the
 * script is missing. */
bool fake_hub_start(fake_hub *hub);
/* Stops it and removes its folder. */
void fake_hub_stop(fake_hub *hub);

/* Writes a file at <root>/<rel> (rel = owner/repo/path). */
bool fake_hub_put(fake_hub *hub, const char *rel, const void *data, size_t size);
/* GET <url><path_and_query>; the body goes to out (NUL-terminated, may be NULL). */
bool fake_hub_get(fake_hub *hub, const char *path_and_query, char *out, size_t size);
/* Injects a fault for a file (see fake_hub.py): mode cut, 404, 401, 500, corrupt, slow. */
bool fake_hub_fault(fake_hub *hub, const char *rel, const char *mode, int count, int rate);

/* How many requests the resolve ("resolve_gets") or CDN ("cdn_gets") path got for rel. */
int fake_hub_count(fake_hub *hub, const char *table, const char *rel);
/* The Authorization header of request i (0-based) of rel in "resolve_auth" / "cdn_auth", or
 * "" when there was none; false when there was no such request. */
bool fake_hub_auth(fake_hub *hub, const char *table, const char *rel, int i, char *out,
                   size_t size);
/* The Range header of CDN request i of rel ("" when none). */
bool fake_hub_range(fake_hub *hub, const char *rel, int i, char *out, size_t size);

/* Removes a folder tree (test clean-up). */
void fake_hub_rmtree(const char *path);
/* A fresh temporary folder; free() the result. */
char *fake_hub_temp_dir(void);

#endif

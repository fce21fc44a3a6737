/* fluid-load: a bounded load test for a fluid-server on this machine (loopback only).
 *
 *   fluid-load --model tiny --mix chat-stream=4,transcription=1,health=2 --audio a.wav \
 *              -c 4 -d 600 --server-pid PID --interval 30 [--json]
 *
 * Sends a fixed count of requests or keeps sending for a fixed time, checks every response,
 * and reports failures, latency percentiles, time to first token and the server's memory
 * (tools/fluid-load/). Exits 1 when any request failed. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>

#include "fluid-load/load.h"

int main(int argc, char **argv) {
    load_options o;
    int parsed = load_parse_options(argc, argv, &o);
    if (parsed != 0) return parsed > 0 ? 0 : 2;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fluid-load: libcurl failed to initialise\n");
        return 2;
    }
    load_report *r = calloc(1, sizeof *r);
    int status = 2;
    if (r != NULL && load_run(&o, r)) {
        bool printed = true;
        if (o.json)
            printed = load_print_json(&o, r);
        else
            load_print_text(&o, r);
        status = printed && load_total_failures(r) == 0 && !r->memory.gone ? 0 : 1;
    }
    if (r != NULL) load_report_free(r);
    free(r);
    curl_global_cleanup();
    return status;
}

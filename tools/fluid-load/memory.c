/* fluid-load: the server's resident memory, read from /proc/PID/status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid-load/load.h"

long load_read_status_kib(long pid, const char *field) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char line[256];
    size_t field_len = strlen(field);
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, field_len) == 0 && line[field_len] == ':') {
            char *end = NULL;
            long v = strtol(line + field_len + 1, &end, 10);
            if (end != line + field_len + 1 && v >= 0) kib = v;
            break;
        }
    }
    fclose(f);
    return kib;
}

static bool curve_add(load_memory *m, double t_s, long kib) {
    if (m->n_curve == m->cap_curve) {
        size_t cap = m->cap_curve ? m->cap_curve * 2 : 64;
        load_rss_point *p = realloc(m->curve, cap * sizeof *p);
        if (p == NULL) return false;
        m->curve = p;
        m->cap_curve = cap;
    }
    m->curve[m->n_curve++] = (load_rss_point){t_s, kib};
    return true;
}

bool load_memory_sample(load_memory *m, double t_s, bool on_curve, long *kib) {
    *kib = load_read_status_kib(m->pid, "VmRSS");
    if (*kib < 0) {
        m->gone = true;
        return true;
    }
    if (*kib > m->peak_kib) m->peak_kib = *kib;
    return !on_curve || curve_add(m, t_s, *kib);
}

void load_memory_free(load_memory *m) {
    free(m->curve);
    m->curve = NULL;
    m->n_curve = m->cap_curve = 0;
}

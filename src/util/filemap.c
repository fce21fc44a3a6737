#include "util/filemap.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

long long fl_map_huge_bytes(const void *addr) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) return -1;
    char line[512];
    bool in_mapping = false;
    long long kib = -1;
    while (fgets(line, sizeof line, f)) {
        uintptr_t start, end;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &start, &end) == 2 && strchr(line, ':')) {
            if (in_mapping) break; /* the next mapping's header: ours had no such line */
            in_mapping = start == (uintptr_t)addr;
        } else if (in_mapping && sscanf(line, "FilePmdMapped: %lld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

/* Faults the whole mapping in now (reading the file where it is not cached); false when the
 * kernel cannot (too old) or the file is shorter than the mapping. */
static bool populate(void *map, size_t size) {
    return madvise(map, size, MADV_POPULATE_READ) == 0;
}

void *fl_map_file(int fd, size_t size) {
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return NULL;
    if (size < FL_FILEMAP_HUGE_MIN || madvise(map, size, MADV_HUGEPAGE) != 0) return map;
    if (!populate(map, size) || fl_map_huge_bytes(map) >= (long long)(size - size / 8)) return map;
    /* Cached in small pages: unmap them from us, drop them from the cache (pages still to be
     * written back, or mapped by other processes, would stay: write the file out first), and
     * read it again into 2 MiB folios. */
    if (madvise(map, size, MADV_DONTNEED) == 0 && fdatasync(fd) == 0 &&
        posix_fadvise(fd, 0, (off_t)size, POSIX_FADV_DONTNEED) == 0)
        populate(map, size);
    return map;
}

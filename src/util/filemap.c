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

/* Bytes [off, off + len) of the mapping dropped from us and from the page cache (pages that
 * other processes map stay), then read again; false if that could not be done. */
static bool read_again(char *map, int fd, size_t off, size_t len) {
    return madvise(map + off, len, MADV_DONTNEED) == 0 &&
           posix_fadvise(fd, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED) == 0 &&
           populate(map + off, len);
}

void *fl_map_file(int fd, size_t size) {
    char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) return NULL;
    if (size < FL_FILEMAP_HUGE_MIN || madvise(map, size, MADV_HUGEPAGE) != 0) return map;
    long long huge = populate(map, size) ? fl_map_huge_bytes(map) : -1;
    if (huge < 0 || huge >= (long long)(size - size / 8)) return map;
    /* Mostly in small pages. Pages still to be written back would stay in the cache: write the
     * file out first. Where no page of it is huge yet, a first stretch read again tells whether
     * the kernel and filesystem make 2 MiB folios at all (not over NFS, say): if not, the rest
     * is left alone rather than read again on every load. */
    if (fdatasync(fd) != 0) return map;
    if (huge == 0) {
        if (!read_again(map, fd, 0, FL_FILEMAP_PROBE) || fl_map_huge_bytes(map) <= 0) return map;
        read_again(map, fd, FL_FILEMAP_PROBE, size - FL_FILEMAP_PROBE);
    } else {
        read_again(map, fd, 0, size);
    }
    return map;
}

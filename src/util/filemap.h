/* Read-only mappings of whole files, backed by 2 MiB pages where the kernel can.
 *
 * Generating a token streams every weight of a model once. With 4 KiB pages that costs a TLB
 * miss every 4 KiB and stalls the hardware prefetcher at every page boundary; with 2 MiB pages
 * the same loop runs measurably closer to the memory bandwidth (docs/benchmarks.md).
 *
 * Linux maps a file with 2 MiB pages only where the page cache holds it in 2 MiB folios, and it
 * builds such folios when the file is read into a mapping marked MADV_HUGEPAGE (filesystems
 * with large folios, e.g. ext4 and xfs on recent kernels). A large file that is already cached
 * in small pages (just written, downloaded or read by another program) is therefore dropped
 * from the cache once and read again (after a first 4 MiB shows that this gives 2 MiB pages);
 * otherwise the mapping is used as it is. */
#ifndef FLUID_UTIL_FILEMAP_H
#define FLUID_UTIL_FILEMAP_H

#include <stdbool.h>
#include <stddef.h>

/* Files smaller than this are mapped plainly (a few huge pages would not pay for the work). */
#define FL_FILEMAP_HUGE_MIN ((size_t)32 << 20)

/* The first stretch of a file read again to learn whether it can get 2 MiB pages at all. */
#define FL_FILEMAP_PROBE ((size_t)4 << 20)

/* Maps `size` bytes of the open file `fd` read-only (MAP_PRIVATE). Files of at least
 * FL_FILEMAP_HUGE_MIN bytes are also read in at once, with 2 MiB pages where possible. Returns
 * NULL (errno set) when mmap fails. */
void *fl_map_file(int fd, size_t size);

/* Bytes of the mapping that starts at addr (one made by fl_map_file) that the kernel maps with
 * 2 MiB pages; -1 when that cannot be read (no /proc, or no such mapping). */
long long fl_map_huge_bytes(const void *addr);

#endif

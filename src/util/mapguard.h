/* Guarded file mappings: surviving a model file truncated while it is mapped.
 *
 * Reading a page of a file mapping that lies past the file's end raises SIGBUS, which kills the
 * process; a user who truncates (or overwrites with a shorter file) a model the server has
 * mapped would take every client down with it. A guarded mapping is registered here; the SIGBUS
 * handler (installed by the registrations) checks whether the faulting address lies in a
 * registered mapping and, if so, maps anonymous zero pages over the whole mapping (mmap
 * MAP_FIXED: one system call, safe in a handler) and marks it damaged. The faulting read then
 * retries and sees zeros; the owner checks fl_mapguard_damaged after each step and stops using
 * the data. A SIGBUS anywhere else goes to the previous handler (or kills as before).
 *
 * The registry is the one piece of process-wide mutable state of the project: a fixed table
 * the handler reads without locks (atomics only). */
#ifndef FLUID_UTIL_MAPGUARD_H
#define FLUID_UTIL_MAPGUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Mappings guarded at once; further ones are mapped unguarded (as before this module). */
#define FL_MAPGUARD_SLOTS 64

/* Registers a read-only mapping [addr, addr + len) and makes sure the SIGBUS handler is in
 * place (chaining to the one it replaces). Returns its slot, or -1 when the table is full or
 * the handler cannot be installed (the mapping is then simply not guarded). */
int fl_mapguard_add(const void *addr, size_t len);

/* Unregisters a slot (call before munmap). Ignores -1. */
void fl_mapguard_remove(int slot);

/* Whether the file under the registered mapping of slot shrank while mapped (its pages are
 * now zeros). */
bool fl_mapguard_damaged(int slot);

#endif

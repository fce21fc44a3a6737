#include "util/mapguard.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

enum { SLOT_FREE, SLOT_FILLING, SLOT_ACTIVE };

typedef struct guard_slot {
    atomic_int state;
    atomic_uintptr_t start;
    atomic_size_t len;
    atomic_bool damaged;
} guard_slot;

/* The registry (see the header for why it is global) and the handler it replaced. */
static guard_slot slots[FL_MAPGUARD_SLOTS];
static struct sigaction previous_action;
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;

/* Hands a SIGBUS that is not ours to whoever had it before. */
static void forward(int sig, siginfo_t *info, void *context) {
    if (previous_action.sa_flags & SA_SIGINFO) {
        previous_action.sa_sigaction(sig, info, context);
    } else if (previous_action.sa_handler != SIG_IGN && previous_action.sa_handler != SIG_DFL) {
        previous_action.sa_handler(sig);
    } else {
        /* Default action: restore it; the faulting access repeats and kills the process. */
        signal(sig, SIG_DFL);
    }
}

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    uintptr_t addr = (uintptr_t)info->si_addr;
    for (int i = 0; i < FL_MAPGUARD_SLOTS; i++) {
        guard_slot *s = &slots[i];
        if (atomic_load(&s->state) != SLOT_ACTIVE) continue;
        uintptr_t start = atomic_load(&s->start);
        size_t len = atomic_load(&s->len);
        if (addr < start || addr - start >= len) continue;
        void *zeros =
            mmap((void *)start, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (zeros == MAP_FAILED) break; /* cannot repair: let the fault be fatal */
        atomic_store(&s->damaged, true);
        return;
    }
    forward(sig, info, context);
}

/* Makes on_sigbus the SIGBUS handler, remembering the one it replaces. Done at every
 * registration, so code that took SIGBUS over since (a test framework) is chained behind it. */
static bool install_handler(void) {
    pthread_mutex_lock(&install_mu);
    struct sigaction current;
    bool ok = sigaction(SIGBUS, NULL, &current) == 0;
    if (ok && !((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_sigbus)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        ok = sigaction(SIGBUS, &sa, &previous_action) == 0;
    }
    pthread_mutex_unlock(&install_mu);
    return ok;
}

int fl_mapguard_add(const void *addr, size_t len) {
    if (addr == NULL || len == 0 || !install_handler()) return -1;
    for (int i = 0; i < FL_MAPGUARD_SLOTS; i++) {
        int expected = SLOT_FREE;
        if (!atomic_compare_exchange_strong(&slots[i].state, &expected, SLOT_FILLING)) continue;
        atomic_store(&slots[i].start, (uintptr_t)addr);
        atomic_store(&slots[i].len, len);
        atomic_store(&slots[i].damaged, false);
        atomic_store(&slots[i].state, SLOT_ACTIVE);
        return i;
    }
    return -1;
}

void fl_mapguard_remove(int slot) {
    if (slot < 0 || slot >= FL_MAPGUARD_SLOTS) return;
    atomic_store(&slots[slot].state, SLOT_FREE);
}

bool fl_mapguard_damaged(int slot) {
    if (slot < 0 || slot >= FL_MAPGUARD_SLOTS) return false;
    return atomic_load(&slots[slot].state) == SLOT_ACTIVE && atomic_load(&slots[slot].damaged);
}

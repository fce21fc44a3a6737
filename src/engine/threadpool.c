/* The compute pool. A forward pass runs hundreds of short parallel tasks per token, so handing
 * a task over must cost far less than a futex round trip: workers spin on a generation counter
 * for a while after each task (the next one usually follows within microseconds) and only then
 * sleep on a condition variable; the caller likewise spins until the last worker is done.
 * Sleeping is announced through counters so that the fast path never takes the mutex.
 *
 * Each share (thread index) of a task is claimed before it runs, by its worker or, once the
 * caller has finished its own share, by the caller: a worker that has not started yet (asleep,
 * or descheduled on a busy machine) never holds the task up, and every share still runs
 * exactly once. */
#include "engine/threadpool.h"

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "fluid/fluid.h"

/* How a thread waits before sleeping: PAUSE_SPINS pause instructions (a few microseconds),
 * then up to YIELD_SPINS sched_yield calls (some hundreds of microseconds when the cores are
 * otherwise idle), which bridge the serial work between two matmuls without starving a thread
 * of ours that waits for a core when the machine is oversubscribed. */
enum { PAUSE_SPINS = 256, YIELD_SPINS = 1000 };

/* One step of a wait loop; false once the thread should sleep instead. */
static bool spin_step(int *spins) {
    if (*spins >= PAUSE_SPINS + YIELD_SPINS) return false;
    if ((*spins)++ < PAUSE_SPINS)
        _mm_pause();
    else
        sched_yield();
    return true;
}

struct fluid_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t run_lock; /* one task at a time */
    pthread_mutex_t lock;     /* guards sleeping only */
    pthread_cond_t work_ready;
    pthread_cond_t work_done;
    fl_task_fn fn;
    void *ctx;
    atomic_ulong generation; /* bumped (after fn/ctx are set) for every task */
    atomic_ulong *claimed;   /* [n_threads]: the last generation whose share i was claimed */
    atomic_int finished;     /* shares of the current task completed by workers */
    atomic_int sleepers;     /* workers blocked on work_ready */
    atomic_int caller_sleeping;
    atomic_int stopping;
};

typedef struct worker_arg {
    fl_pool *pool;
    int index;
} worker_arg;

/* Waits until the generation differs from `seen` (or the pool stops); returns the new one. */
static unsigned long wait_for_work(fl_pool *pool, unsigned long seen) {
    int spins = 0;
    do {
        unsigned long g = atomic_load(&pool->generation);
        if (g != seen || atomic_load(&pool->stopping)) return g;
    } while (spin_step(&spins));
    pthread_mutex_lock(&pool->lock);
    atomic_fetch_add(&pool->sleepers, 1);
    unsigned long g;
    while ((g = atomic_load(&pool->generation)) == seen && !atomic_load(&pool->stopping))
        pthread_cond_wait(&pool->work_ready, &pool->lock);
    atomic_fetch_sub(&pool->sleepers, 1);
    pthread_mutex_unlock(&pool->lock);
    return g;
}

/* Claims share ith of task `gen`; true for the first claimant only. */
static bool claim_share(fl_pool *pool, int ith, unsigned long gen) {
    unsigned long old = atomic_load(&pool->claimed[ith]);
    while (old < gen)
        if (atomic_compare_exchange_weak(&pool->claimed[ith], &old, gen)) return true;
    return false;
}

static void *worker_main(void *p) {
    worker_arg arg = *(worker_arg *)p;
    free(p);
    fl_pool *pool = arg.pool;
    unsigned long seen = 0;
    for (;;) {
        seen = wait_for_work(pool, seen);
        if (atomic_load(&pool->stopping)) return NULL;
        if (!claim_share(pool, arg.index, seen)) continue; /* the caller ran it */
        pool->fn(pool->ctx, arg.index, pool->n_threads);
        atomic_fetch_add(&pool->finished, 1);
        if (atomic_load(&pool->caller_sleeping)) {
            pthread_mutex_lock(&pool->lock);
            pthread_cond_signal(&pool->work_done);
            pthread_mutex_unlock(&pool->lock);
        }
    }
}

fl_pool *fl_pool_create(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    fl_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL) return NULL;
    pool->n_threads = n_threads;
    pthread_mutex_init(&pool->run_lock, NULL);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->work_ready, NULL);
    pthread_cond_init(&pool->work_done, NULL);
    pool->threads = calloc((size_t)n_threads, sizeof *pool->threads);
    pool->claimed = calloc((size_t)n_threads, sizeof *pool->claimed);
    if (pool->threads == NULL || pool->claimed == NULL) {
        fl_pool_free(pool);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *arg = malloc(sizeof *arg);
        if (arg == NULL) {
            pool->n_threads = i;
            fl_pool_free(pool);
            return NULL;
        }
        arg->pool = pool;
        arg->index = i;
        if (pthread_create(&pool->threads[i], NULL, worker_main, arg) != 0) {
            free(arg);
            pool->n_threads = i;
            fl_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void fl_pool_free(fl_pool *pool) {
    if (pool == NULL) return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stopping, 1);
    pthread_cond_broadcast(&pool->work_ready);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 1; i < pool->n_threads && pool->threads; i++) pthread_join(pool->threads[i], NULL);
    free(pool->threads);
    free(pool->claimed);
    pthread_cond_destroy(&pool->work_done);
    pthread_cond_destroy(&pool->work_ready);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->run_lock);
    free(pool);
}

int fl_pool_size(const fl_pool *pool) {
    return pool ? pool->n_threads : 1;
}

/* Waits until workers have completed `count` shares of the current task. */
static void wait_for_workers(fl_pool *pool, int count) {
    int spins = 0;
    do {
        if (atomic_load(&pool->finished) >= count) return;
    } while (spin_step(&spins));
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->caller_sleeping, 1);
    while (atomic_load(&pool->finished) < count) pthread_cond_wait(&pool->work_done, &pool->lock);
    atomic_store(&pool->caller_sleeping, 0);
    pthread_mutex_unlock(&pool->lock);
}

void fl_pool_run(fl_pool *pool, fl_task_fn fn, void *ctx) {
    if (pool == NULL || pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->run_lock);
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->finished, 0);
    /* publishes fn/ctx (sequentially consistent) */
    unsigned long gen = atomic_fetch_add(&pool->generation, 1) + 1;
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->lock);
        pthread_cond_broadcast(&pool->work_ready);
        pthread_mutex_unlock(&pool->lock);
    }

    fn(ctx, 0, pool->n_threads);
    int by_workers = 0;
    for (int i = 1; i < pool->n_threads; i++) {
        if (claim_share(pool, i, gen))
            fn(ctx, i, pool->n_threads); /* its worker has not started: run it here */
        else
            by_workers++;
    }

    wait_for_workers(pool, by_workers);
    pthread_mutex_unlock(&pool->run_lock);
}

void fl_split_range(long n, int ith, int nth, long *begin, long *end) {
    long per = n / nth, extra = n % nth;
    *begin = ith * per + (ith < extra ? ith : extra);
    *end = *begin + per + (ith < extra ? 1 : 0);
}

fluid_pool *fluid_pool_create(int n_threads) {
    if (n_threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = cores > 0 ? (int)cores : 1;
    }
    return fl_pool_create(n_threads);
}

void fluid_pool_free(fluid_pool *pool) {
    fl_pool_free(pool);
}

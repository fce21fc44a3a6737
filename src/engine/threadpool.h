/* The compute pool: a fixed set of worker threads that run one parallel task at a time.
 * One pool serves every model in the process (two cores must never be oversubscribed); callers
 * from different threads are served one after the other. */
#ifndef FLUID_ENGINE_THREADPOOL_H
#define FLUID_ENGINE_THREADPOOL_H

typedef struct fluid_pool fl_pool; /* the public fluid_pool */

/* A task body: called once on each of `nth` threads with its index `ith` (0 = the caller). */
typedef void (*fl_task_fn)(void *ctx, int ith, int nth);

/* Creates a pool of `n_threads` threads in all, the calling thread included (n_threads >= 1).
 * Returns NULL when threads cannot be started. */
fl_pool *fl_pool_create(int n_threads);
void fl_pool_free(fl_pool *pool);
int fl_pool_size(const fl_pool *pool);

/* Runs fn on every thread of the pool and returns when all have finished. A NULL pool runs fn
 * once on the caller with nth = 1. */
void fl_pool_run(fl_pool *pool, fl_task_fn fn, void *ctx);

/* Splits [0, n) into nth near-equal parts and returns part ith as [*begin, *end). */
void fl_split_range(long n, int ith, int nth, long *begin, long *end);

#endif

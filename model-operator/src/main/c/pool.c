// Workers spin briefly after a call (the decode path issues calls back to back), then sleep on
// a futex. The caller publishes a task by bumping a generation counter, runs share 0 itself and
// spins until the workers are done.
#define _GNU_SOURCE
#include "pool.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "monostream_cpu.h"

#define MAX_THREADS 64
#define SPIN_ROUNDS 2000 // a few µs of pause instructions before a worker sleeps

static struct {
    pthread_mutex_t lock;        // held by the one caller using the pool, and while resizing it
    _Atomic int threads;         // the caller included
    pthread_t ids[MAX_THREADS];
    pool_task task;
    const void *ctx;
    _Atomic uint32_t generation; // bumped per call; workers wait for a change (futex word)
    uint32_t created_at;         // the generation when the current workers were made
    _Atomic int pending;         // workers still running this generation
    _Atomic int sleepers;        // workers asleep on the futex
    _Atomic int stop;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .threads = 1};

static void wake_all(void) {
    syscall(SYS_futex, &pool.generation, FUTEX_WAKE_PRIVATE, MAX_THREADS, NULL, NULL, 0);
}

static void *worker(void *arg) {
    const int id = (int) (intptr_t) arg;
    // not the current generation: a call may have been published before this thread ran
    uint32_t seen = pool.created_at;
    for (;;) {
        uint32_t now;
        int spins = 0;
        while ((now = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) {
                _mm_pause();
                continue;
            }
            atomic_fetch_add(&pool.sleepers, 1);
            syscall(SYS_futex, &pool.generation, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
            atomic_fetch_sub(&pool.sleepers, 1);
            spins = 0;
        }
        seen = now;
        if (atomic_load(&pool.stop)) {
            return NULL;
        }
        pool.task(pool.ctx, id, pool.threads);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
}

static void stop_workers(void) {
    atomic_store(&pool.stop, 1);
    atomic_fetch_add(&pool.generation, 1);
    wake_all();
    for (int i = 1; i < pool.threads; i++) {
        pthread_join(pool.ids[i], NULL);
    }
    atomic_store(&pool.stop, 0);
    pool.threads = 1;
}

int pool_set_threads(int threads) {
    if (threads < 1 || threads > MAX_THREADS) {
        return MS_CPU_EINVAL;
    }
    pthread_mutex_lock(&pool.lock);
    int rc = MS_CPU_OK;
    if (threads != pool.threads) {
        stop_workers();
        pool.created_at = atomic_load(&pool.generation);
        for (int i = 1; i < threads; i++) {
            if (pthread_create(&pool.ids[i], NULL, worker, (void *) (intptr_t) i) != 0) {
                rc = MS_CPU_ETHREAD; // the ones made so far keep working
                break;
            }
            pool.threads = i + 1;
        }
    }
    pthread_mutex_unlock(&pool.lock);
    return rc;
}

int pool_threads(void) {
    return pool.threads;
}

void pool_run(pool_task task, const void *ctx, int worth_sharing) {
    if (!worth_sharing || pool.threads == 1 || pthread_mutex_trylock(&pool.lock) != 0) {
        task(ctx, 0, 1);
        return;
    }
    const int threads = pool.threads;
    pool.task = task;
    pool.ctx = ctx;
    atomic_store(&pool.pending, threads - 1);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    if (atomic_load(&pool.sleepers) > 0) {
        wake_all();
    }
    task(ctx, 0, threads);
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        _mm_pause();
    }
    pthread_mutex_unlock(&pool.lock);
}

// The thread pool of libmonostream_cpu.so: one per process, shared by every kernel.
#ifndef MONOSTREAM_CPU_POOL_H
#define MONOSTREAM_CPU_POOL_H

/** One share of a call: the part-th of parts, each run by one thread. */
typedef void (*pool_task)(const void *ctx, int part, int parts);

/**
 * Runs task(ctx, p, parts) for every p < parts and returns when all are done. parts is the
 * pool's size, or 1 (the caller alone) when worth_sharing is 0 or another caller holds the pool:
 * concurrent callers never wait on each other.
 */
void pool_run(pool_task task, const void *ctx, int worth_sharing);

/** Sets the number of threads, the caller included (1..64); MS_CPU_OK or an error code. */
int pool_set_threads(int threads);

int pool_threads(void);

#endif

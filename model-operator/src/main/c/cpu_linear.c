// Decode-sized linear layers on the CPU: Y[M,N] = X[M,K] · W[N,K]ᵀ for a few rows M, with the
// weight read once from memory at close to the machine's read bandwidth. libtorch's oneDNN GEMV
// reaches 55-75 % of it on the machines we measured (issue 3 note); decode is nothing but these
// products, so they get their own kernel. Prefill (many rows) stays with oneDNN.
//
// BF16: products of two bf16 values are exact in fp32 and are accumulated in fp32; the result is
// rounded to bf16 (round to nearest even), as oneDNN does. F32: fp32 throughout.
//
// Instruction sets are chosen at run time: AVX512-BF16 (vdpbf16ps) when the CPU has it, otherwise
// a portable vector loop compiled for AVX-512, AVX2 and baseline x86-64 (GCC target_clones).
//
// Threads: the rows of W are split across a small pool of workers created on first use; the
// calling thread takes the first share. Workers spin briefly after a call (decode issues calls
// back to back), then sleep on a futex. Concurrent callers never wait on each other: a caller that
// finds the pool busy computes its product alone.
#define _GNU_SOURCE
#include "cpu_linear.h"

#include <immintrin.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 64
#define ROW_BLOCK 16     // threads share the rows in blocks of this many
#define SPIN_ROUNDS 2000  // a few µs of pause instructions (back-to-back calls) before a worker sleeps

// ------------------------------------------------------------------ element conversions

static inline float bf16_to_f32(uint16_t v) {
    uint32_t bits = (uint32_t) v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t) ((bits >> 16) | 0x40u); // quiet NaN, sign kept
    }
    bits += 0x7fffu + ((bits >> 16) & 1u); // round to nearest even
    return (uint16_t) (bits >> 16);
}

// ------------------------------------------------------------------ the work of one thread

typedef struct {
    int dtype;
    const void *x;
    const void *w;
    void *y;
    int64_t m, k, n;
} job_t;

static inline void store(const job_t *j, int64_t row, int64_t col, float v) {
    if (j->dtype == MS_BF16) {
        ((uint16_t *) j->y)[row * j->n + col] = f32_to_bf16(v);
    } else {
        ((float *) j->y)[row * j->n + col] = v;
    }
}

// Portable vector loop, compiled per instruction set: 16 lanes of fp32. Like the BF16 kernel
// below it reads the weight in memory order, one row at a time, against up to 4 X rows
// with two accumulators each.
typedef float v16f __attribute__((vector_size(64)));
typedef uint32_t v16u __attribute__((vector_size(64)));
typedef uint16_t v16h __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) v16f load16(const void *base, int64_t at, int bf16) {
    v16f v;
    if (bf16) {
        v16h h;
        memcpy(&h, (const uint16_t *) base + at, sizeof h);
        v16u u = __builtin_convertvector(h, v16u) << 16;
        memcpy(&v, &u, sizeof v);
    } else {
        memcpy(&v, (const float *) base + at, sizeof v);
    }
    return v;
}

static inline __attribute__((always_inline)) float load1(const void *base, int64_t at, int bf16) {
    return bf16 ? bf16_to_f32(((const uint16_t *) base)[at]) : ((const float *) base)[at];
}

// One weight row against X rows mb..mb+G-1; G is a constant at each call, so the accumulators
// stay in registers.
static inline __attribute__((always_inline)) void row_generic(const job_t *j, int64_t n, int64_t mb, const int G,
                                                              const int bf16) {
    const int64_t k = j->k, vk = k & ~(int64_t) 31;
    v16f acc[4][2];
    for (int g = 0; g < G; g++) {
        acc[g][0] = (v16f) {0};
        acc[g][1] = (v16f) {0};
    }
    int64_t c = 0;
    for (; c < vk; c += 32) {
        v16f w0 = load16(j->w, n * k + c, bf16);
        v16f w1 = load16(j->w, n * k + c + 16, bf16);
        for (int g = 0; g < G; g++) {
            acc[g][0] += w0 * load16(j->x, (mb + g) * k + c, bf16);
            acc[g][1] += w1 * load16(j->x, (mb + g) * k + c + 16, bf16);
        }
    }
    for (int g = 0; g < G; g++) {
        float s = 0;
        for (int64_t t = c; t < k; t++) {
            s += load1(j->w, n * k + t, bf16) * load1(j->x, (mb + g) * k + t, bf16);
        }
        v16f sum = acc[g][0] + acc[g][1];
        for (int l = 0; l < 16; l++) {
            s += sum[l];
        }
        store(j, mb + g, n, s);
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void rows_generic(const job_t *j, int64_t n0, int64_t n1) {
    const int bf16 = j->dtype == MS_BF16;
    for (int64_t n = n0; n < n1; n++) {
        int64_t mb = 0;
        for (; j->m - mb >= 4; mb += 4) {
            bf16 ? row_generic(j, n, mb, 4, 1) : row_generic(j, n, mb, 4, 0);
        }
        for (; j->m - mb >= 2; mb += 2) {
            bf16 ? row_generic(j, n, mb, 2, 1) : row_generic(j, n, mb, 2, 0);
        }
        if (mb < j->m) {
            bf16 ? row_generic(j, n, mb, 1, 1) : row_generic(j, n, mb, 1, 0);
        }
    }
}

// AVX512-BF16: vdpbf16ps multiplies bf16 pairs exactly and adds them into fp32 lanes. The weight
// is read in memory order, one row at a time (one linear stream per thread, which the hardware
// prefetcher follows; interleaving rows was a third slower), against up to 4 X rows from cache,
// two accumulators per X row to hide the instruction's latency.
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void row_bf16_dp(const job_t *j, int64_t n, int64_t mb, const int G) {
    const int64_t k = j->k, vk = k & ~(int64_t) 63;
    const uint16_t *x = j->x, *row = (const uint16_t *) j->w + n * k;
    __m512 acc[4][2];
    for (int g = 0; g < G; g++) {
        acc[g][0] = _mm512_setzero_ps();
        acc[g][1] = _mm512_setzero_ps();
    }
    int64_t c = 0;
    for (; c < vk; c += 64) {
        __m512bh w0 = (__m512bh) _mm512_loadu_si512(row + c);
        __m512bh w1 = (__m512bh) _mm512_loadu_si512(row + c + 32);
        for (int g = 0; g < G; g++) {
            const uint16_t *xr = x + (mb + g) * k + c;
            acc[g][0] = _mm512_dpbf16_ps(acc[g][0], w0, (__m512bh) _mm512_loadu_si512(xr));
            acc[g][1] = _mm512_dpbf16_ps(acc[g][1], w1, (__m512bh) _mm512_loadu_si512(xr + 32));
        }
    }
    for (; c < k; c += 32) {
        const __mmask32 mask = k - c >= 32 ? (__mmask32) ~0u : (__mmask32) ((1u << (k - c)) - 1);
        __m512bh w0 = (__m512bh) _mm512_maskz_loadu_epi16(mask, row + c);
        for (int g = 0; g < G; g++) {
            __m512bh xv = (__m512bh) _mm512_maskz_loadu_epi16(mask, x + (mb + g) * k + c);
            acc[g][0] = _mm512_dpbf16_ps(acc[g][0], w0, xv);
        }
    }
    for (int g = 0; g < G; g++) {
        store(j, mb + g, n, _mm512_reduce_add_ps(_mm512_add_ps(acc[g][0], acc[g][1])));
    }
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_bf16_dp(const job_t *j, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
        int64_t mb = 0;
        for (; j->m - mb >= 4; mb += 4) {
            row_bf16_dp(j, n, mb, 4);
        }
        for (; j->m - mb >= 2; mb += 2) {
            row_bf16_dp(j, n, mb, 2);
        }
        if (mb < j->m) {
            row_bf16_dp(j, n, mb, 1);
        }
    }
}

static int has_avx512bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
}

static int use_dp = -1; // set once by ms_cpu_linear_isa or the first call

static void run_rows(const job_t *j, int64_t n0, int64_t n1) {
    if (n0 >= n1) {
        return;
    }
    if (j->dtype == MS_BF16 && use_dp) {
        rows_bf16_dp(j, n0, n1);
    } else {
        rows_generic(j, n0, n1);
    }
}

// ------------------------------------------------------------------ the thread pool

static struct {
    pthread_mutex_t start_lock;  // one caller uses the pool at a time
    _Atomic int threads;         // including the caller
    pthread_t ids[MAX_THREADS];
    job_t job;
    _Atomic uint32_t generation; // bumped per call; workers wait for a change (futex word)
    uint32_t created_at;         // the generation when the current workers were made
    _Atomic int pending;         // workers still running this generation
    _Atomic int sleepers;        // workers asleep on the futex
    _Atomic int stop;
} pool = {.start_lock = PTHREAD_MUTEX_INITIALIZER, .threads = 1};

static void share(int64_t n, int part, int parts, int64_t *n0, int64_t *n1) {
    int64_t blocks = (n + ROW_BLOCK - 1) / ROW_BLOCK;
    *n0 = blocks * part / parts * ROW_BLOCK;
    *n1 = blocks * (part + 1) / parts * ROW_BLOCK;
    if (*n1 > n) {
        *n1 = n;
    }
}

static void *worker(void *arg) {
    const int id = (int) (intptr_t) arg;
    // not the current generation: a call may already have been published before this thread ran
    uint32_t seen = pool.created_at;
    for (;;) {
        uint32_t now;
        int spins = 0;
        while ((now = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen) {
            if (atomic_load(&pool.stop)) {
                return NULL;
            }
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
        int64_t n0, n1;
        share(pool.job.n, id, pool.threads, &n0, &n1);
        run_rows(&pool.job, n0, n1);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
}

static void stop_workers(void) {
    atomic_store(&pool.stop, 1);
    atomic_fetch_add(&pool.generation, 1);
    syscall(SYS_futex, &pool.generation, FUTEX_WAKE_PRIVATE, MAX_THREADS, NULL, NULL, 0);
    for (int i = 1; i < pool.threads; i++) {
        pthread_join(pool.ids[i], NULL);
    }
    atomic_store(&pool.stop, 0);
    pool.threads = 1;
}

// ------------------------------------------------------------------ the ABI

int ms_cpu_linear_abi_version(void) {
    return MS_CPU_LINEAR_ABI_VERSION;
}

const char *ms_cpu_linear_isa(void) {
    if (use_dp < 0) {
        use_dp = has_avx512bf16();
    }
    if (use_dp) {
        return "avx512bf16";
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        return "avx512f";
    }
    return __builtin_cpu_supports("avx2") ? "avx2" : "x86-64";
}

int ms_cpu_linear_prefer_portable(int portable) {
    if (use_dp < 0) {
        use_dp = has_avx512bf16();
    }
    int before = !use_dp;
    use_dp = portable ? 0 : has_avx512bf16();
    return before;
}

int ms_cpu_linear_set_threads(int threads) {
    if (threads < 1 || threads > MAX_THREADS) {
        return MS_CPU_EINVAL;
    }
    pthread_mutex_lock(&pool.start_lock);
    int rc = MS_CPU_OK;
    if (threads != pool.threads) {
        stop_workers();
        pool.created_at = atomic_load(&pool.generation);
        for (int i = 1; i < threads; i++) {
            if (pthread_create(&pool.ids[i], NULL, worker, (void *) (intptr_t) i) != 0) {
                pool.threads = i; // the ones made so far keep working
                rc = MS_CPU_ETHREAD;
                break;
            }
            pool.threads = i + 1;
        }
    }
    pthread_mutex_unlock(&pool.start_lock);
    return rc;
}

int ms_cpu_linear_threads(void) {
    return pool.threads;
}

int ms_cpu_linear(int dtype, const void *x, int64_t m, int64_t k, const void *w, int64_t n, void *y) {
    if ((dtype != MS_F32 && dtype != MS_BF16) || !x || !w || !y || m < 1 || k < 1 || n < 1) {
        return MS_CPU_EINVAL;
    }
    if (use_dp < 0) {
        use_dp = has_avx512bf16();
    }
    job_t job = {dtype, x, w, y, m, k, n};
    // a small product, or the pool busy with another caller: compute it here
    if (pool.threads == 1 || n < 64 || pthread_mutex_trylock(&pool.start_lock) != 0) {
        run_rows(&job, 0, n);
        return MS_CPU_OK;
    }
    const int threads = pool.threads;
    pool.job = job;
    atomic_store(&pool.pending, threads - 1);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_release);
    if (atomic_load(&pool.sleepers) > 0) {
        syscall(SYS_futex, &pool.generation, FUTEX_WAKE_PRIVATE, MAX_THREADS, NULL, NULL, 0);
    }
    int64_t n0, n1;
    share(n, 0, threads, &n0, &n1);
    run_rows(&job, n0, n1);
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        _mm_pause();
    }
    pthread_mutex_unlock(&pool.start_lock);
    return MS_CPU_OK;
}

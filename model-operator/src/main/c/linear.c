// Decode-sized linear layers: Y[M,N] = X[M,K] · W[N,K]ᵀ for a few rows M, with the weight read
// once from memory at close to the machine's read bandwidth. libtorch's oneDNN GEMV reaches
// 55-75 % of it on the machines we measured; decode is mostly these products, so they get their
// own kernel. From GEMM_MIN_ROWS rows on (prefill), products go to the blocked product of gemm.c
// instead where the CPU has what it needs (takes_gemm).
//
// The weight is read in memory order, one row at a time: one linear stream per thread, which
// the hardware prefetcher follows (interleaving 4 rows was a third slower). Each weight row is
// dotted with up to 4 rows of X (kept in cache), two accumulators per X row to hide latency.
//
// BF16: AVX512-BF16 (vdpbf16ps: bf16 pairs multiplied exactly, added into fp32 lanes) when the
// CPU has it, otherwise a portable vector loop compiled for AVX-512, AVX2 and baseline x86-64
// (GCC target_clones). F32 always takes the portable loop.
#include <immintrin.h>

#include "cpu_features.h"
#include "elements.h"
#include "gemm.h"
#include "monostream_cpu.h"
#include "pool.h"

#define ROW_BLOCK 16 // threads share the rows in blocks of this many
#define PREFETCH 2048 // elements of W ahead (two 1024-wide rows) that the AVX512-BF16 loop asks for
#define X_IN_L1 (24 << 10) // bytes of X rows that stay in L1 beside the W stream

typedef struct {
    int dtype;
    const void *x;
    const void *w;  // W, or W1 of a gated product
    const void *w3; // NULL, or W3 of a gated product
    void *y;
    int64_t m, k, n;
} job_t;

static int use_dp = -1; // AVX512-BF16 for BF16 products; set on first use
static int portable = 0; // ms_cpu_prefer_portable: every product through the portable loop

static int dot_products(void) {
    if (use_dp < 0) {
        use_dp = cpu_has_avx512bf16();
    }
    return use_dp;
}

/** Writes y[mb + g, n] for g < G from the dot products of W (and W3) row n. */
static inline __attribute__((always_inline)) void emit(const job_t *j, int64_t n, int64_t mb, int G,
                                                       const float *a, const float *b) {
    for (int g = 0; g < G; g++) {
        store_elem(j->y, (mb + g) * j->n + n, j->w3 ? swiglu(a[g], b[g], j->dtype) : a[g], j->dtype);
    }
}

// ------------------------------------------------------------------ portable loop

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

/** out[g] = W row · X row mb+g for g < G; G is a constant at each call, so the sums stay in registers. */
static inline __attribute__((always_inline)) void dots_portable(const job_t *j, const void *w, int64_t n,
                                                                int64_t mb, const int G, const int bf16,
                                                                float *out) {
    const int64_t k = j->k, vk = k & ~(int64_t) 31;
    v16f acc[4][2];
    for (int g = 0; g < G; g++) {
        acc[g][0] = (v16f) {0};
        acc[g][1] = (v16f) {0};
    }
    int64_t c = 0;
    for (; c < vk; c += 32) {
        v16f w0 = load16(w, n * k + c, bf16);
        v16f w1 = load16(w, n * k + c + 16, bf16);
        for (int g = 0; g < G; g++) {
            acc[g][0] += w0 * load16(j->x, (mb + g) * k + c, bf16);
            acc[g][1] += w1 * load16(j->x, (mb + g) * k + c + 16, bf16);
        }
    }
    for (int g = 0; g < G; g++) {
        float s = 0;
        for (int64_t t = c; t < k; t++) {
            s += load_elem(w, n * k + t, j->dtype) * load_elem(j->x, (mb + g) * k + t, j->dtype);
        }
        v16f sum = acc[g][0] + acc[g][1];
        for (int l = 0; l < 16; l++) {
            s += sum[l];
        }
        out[g] = s;
    }
}

static inline __attribute__((always_inline)) void row_portable(const job_t *j, int64_t n, int64_t mb, const int G,
                                                               const int bf16) {
    float a[4], b[4];
    dots_portable(j, j->w, n, mb, G, bf16, a);
    if (j->w3) {
        dots_portable(j, j->w3, n, mb, G, bf16, b);
    }
    emit(j, n, mb, G, a, b);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void rows_portable(const job_t *j, int64_t n0, int64_t n1) {
    const int bf16 = j->dtype == MS_BF16;
    for (int64_t n = n0; n < n1; n++) {
        int64_t mb = 0;
        for (; j->m - mb >= 4; mb += 4) {
            bf16 ? row_portable(j, n, mb, 4, 1) : row_portable(j, n, mb, 4, 0);
        }
        for (; j->m - mb >= 2; mb += 2) {
            bf16 ? row_portable(j, n, mb, 2, 1) : row_portable(j, n, mb, 2, 0);
        }
        if (mb < j->m) {
            bf16 ? row_portable(j, n, mb, 1, 1) : row_portable(j, n, mb, 1, 0);
        }
    }
}

// ------------------------------------------------------------------ AVX512-BF16

static void rows_dp_single(const job_t *j, int64_t n0, int64_t n1);

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void dots_dp(const job_t *j, const uint16_t *row, int64_t mb,
                                                          const int G, float *out) {
    const int64_t k = j->k, vk = k & ~(int64_t) 63;
    const uint16_t *x = j->x;
    __m512 acc[4][2];
    for (int g = 0; g < G; g++) {
        acc[g][0] = _mm512_setzero_ps();
        acc[g][1] = _mm512_setzero_ps();
    }
    int64_t c = 0;
    for (; c < vk; c += 64) {
        // with several rows of X the loop computes long enough per byte of W for the hardware
        // prefetcher to fall behind: asking ahead made 8 rows a quarter faster and 1 row no slower
        _mm_prefetch((const char *) (row + c + PREFETCH), _MM_HINT_T0);
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
        out[g] = _mm512_reduce_add_ps(_mm512_add_ps(acc[g][0], acc[g][1]));
    }
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void row_dp(const job_t *j, int64_t n, int64_t mb, const int G) {
    float a[4], b[4];
    dots_dp(j, (const uint16_t *) j->w + n * j->k, mb, G, a);
    if (j->w3) {
        dots_dp(j, (const uint16_t *) j->w3 + n * j->k, mb, G, b);
    }
    emit(j, n, mb, G, a, b);
}

/**
 * Two rows of W (n, n + 1) against X rows mb..mb+3 with the X chunk loaded once for both: the
 * same two accumulators per (W row, X row) over the same 64-element chunks as dots_dp, so each
 * output is the same bits as one row at a time.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void dots_dp_2x4(const job_t *j, const uint16_t *r0, const uint16_t *r1,
                                                              int64_t mb, float *out0, float *out1) {
    const int64_t k = j->k, vk = k & ~(int64_t) 63;
    const uint16_t *x = j->x;
    __m512 a[4][2], b[4][2];
    for (int g = 0; g < 4; g++) {
        a[g][0] = a[g][1] = b[g][0] = b[g][1] = _mm512_setzero_ps();
    }
    int64_t c = 0;
    for (; c < vk; c += 64) {
        _mm_prefetch((const char *) (r0 + c + PREFETCH), _MM_HINT_T0);
        _mm_prefetch((const char *) (r1 + c + PREFETCH), _MM_HINT_T0);
        __m512bh xv[4][2];
        for (int g = 0; g < 4; g++) {
            xv[g][0] = (__m512bh) _mm512_loadu_si512(x + (mb + g) * k + c);
            xv[g][1] = (__m512bh) _mm512_loadu_si512(x + (mb + g) * k + c + 32);
        }
        __m512bh w0 = (__m512bh) _mm512_loadu_si512(r0 + c), w1 = (__m512bh) _mm512_loadu_si512(r0 + c + 32);
        for (int g = 0; g < 4; g++) {
            a[g][0] = _mm512_dpbf16_ps(a[g][0], w0, xv[g][0]);
            a[g][1] = _mm512_dpbf16_ps(a[g][1], w1, xv[g][1]);
        }
        w0 = (__m512bh) _mm512_loadu_si512(r1 + c);
        w1 = (__m512bh) _mm512_loadu_si512(r1 + c + 32);
        for (int g = 0; g < 4; g++) {
            b[g][0] = _mm512_dpbf16_ps(b[g][0], w0, xv[g][0]);
            b[g][1] = _mm512_dpbf16_ps(b[g][1], w1, xv[g][1]);
        }
    }
    for (; c < k; c += 32) {
        const __mmask32 mask = k - c >= 32 ? (__mmask32) ~0u : (__mmask32) ((1u << (k - c)) - 1);
        __m512bh w0 = (__m512bh) _mm512_maskz_loadu_epi16(mask, r0 + c);
        __m512bh w1 = (__m512bh) _mm512_maskz_loadu_epi16(mask, r1 + c);
        for (int g = 0; g < 4; g++) {
            __m512bh xg = (__m512bh) _mm512_maskz_loadu_epi16(mask, x + (mb + g) * k + c);
            a[g][0] = _mm512_dpbf16_ps(a[g][0], w0, xg);
            b[g][0] = _mm512_dpbf16_ps(b[g][0], w1, xg);
        }
    }
    for (int g = 0; g < 4; g++) {
        out0[g] = _mm512_reduce_add_ps(_mm512_add_ps(a[g][0], a[g][1]));
        out1[g] = _mm512_reduce_add_ps(_mm512_add_ps(b[g][0], b[g][1]));
    }
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_dp(const job_t *j, int64_t n0, int64_t n1) {
    // X rows that overflow L1 beside the W stream (many rows, long rows) are read from L2 once per
    // W row; taking W rows in pairs halves that (w2 at 8 rows: a quarter faster)
    if (!j->w3 && j->m >= 4 && 2 * j->m * j->k > X_IN_L1) {
        int64_t n = n0;
        for (; n + 1 < n1; n += 2) {
            const uint16_t *r0 = (const uint16_t *) j->w + n * j->k, *r1 = r0 + j->k;
            int64_t mb = 0;
            for (; j->m - mb >= 4; mb += 4) {
                float o0[4], o1[4], none[4] = {0};
                dots_dp_2x4(j, r0, r1, mb, o0, o1);
                emit(j, n, mb, 4, o0, none);
                emit(j, n + 1, mb, 4, o1, none);
            }
            for (; j->m - mb >= 2; mb += 2) {
                row_dp(j, n, mb, 2);
                row_dp(j, n + 1, mb, 2);
            }
            if (mb < j->m) {
                row_dp(j, n, mb, 1);
                row_dp(j, n + 1, mb, 1);
            }
        }
        if (n < n1) {
            rows_dp_single(j, n, n1);
        }
        return;
    }
    rows_dp_single(j, n0, n1);
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_dp_single(const job_t *j, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; n++) {
        int64_t mb = 0;
        for (; j->m - mb >= 4; mb += 4) {
            row_dp(j, n, mb, 4);
        }
        for (; j->m - mb >= 2; mb += 2) {
            row_dp(j, n, mb, 2);
        }
        if (mb < j->m) {
            row_dp(j, n, mb, 1);
        }
    }
}

// ------------------------------------------------------------------ the calls

static void linear_share(const void *ctx, int part, int parts) {
    const job_t *j = ctx;
    int64_t blocks = (j->n + ROW_BLOCK - 1) / ROW_BLOCK;
    int64_t n0 = blocks * part / parts * ROW_BLOCK;
    int64_t n1 = blocks * (part + 1) / parts * ROW_BLOCK;
    if (n1 > j->n) {
        n1 = j->n;
    }
    if (n0 >= n1) {
        return;
    }
    if (j->dtype == MS_BF16 && dot_products()) {
        rows_dp(j, n0, n1);
    } else {
        rows_portable(j, n0, n1);
    }
}

/** Whether a product of dtype with rows of k elements can take gemm on this CPU. */
static int takes_gemm(int dtype, int64_t k) {
    if (portable) {
        return 0;
    }
    return dtype == MS_BF16 ? k % 2 == 0 && dot_products() : cpu_has_avx512f();
}

static int run(int dtype, const void *x, int64_t m, int64_t k, const void *w, const void *w3, int64_t n, void *y) {
    if (!valid_dtype(dtype) || !x || !w || !y || m < 1 || k < 1 || n < 1) {
        return MS_CPU_EINVAL;
    }
    if (m >= GEMM_MIN_ROWS && takes_gemm(dtype, k)) {
        return gemm(dtype, x, m, k, w, w3, NULL, n, y);
    }
    job_t job = {dtype, x, w, w3, y, m, k, n};
    dot_products(); // decided before any worker reads it
    pool_run(linear_share, &job, n >= 4 * ROW_BLOCK);
    return MS_CPU_OK;
}

int ms_cpu_linear(int dtype, const void *x, int64_t m, int64_t k, const void *w, int64_t n, void *y) {
    return run(dtype, x, m, k, w, NULL, n, y);
}

int ms_cpu_gated_linear(int dtype, const void *x, int64_t m, int64_t k, const void *w1, const void *w3, int64_t n,
                        void *y) {
    return w3 ? run(dtype, x, m, k, w1, w3, n, y) : MS_CPU_EINVAL;
}

int ms_cpu_linear_bias(int dtype, const void *x, int64_t m, int64_t k, const void *w, const void *bias, int64_t n,
                       void *y) {
    if (!valid_dtype(dtype) || !x || !w || !bias || !y || m < 1 || k < 1 || n < 1) {
        return MS_CPU_EINVAL;
    }
    if (!takes_gemm(dtype, k)) {
        return MS_CPU_EUNSUPPORTED;
    }
    return gemm(dtype, x, m, k, w, NULL, bias, n, y);
}

const char *ms_cpu_isa(void) {
    if (dot_products()) {
        return "avx512bf16";
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        return "avx512f";
    }
    return __builtin_cpu_supports("avx2") ? "avx2" : "x86-64";
}

int ms_cpu_prefer_portable(int prefer) {
    int before = portable;
    portable = prefer != 0;
    use_dp = portable ? 0 : cpu_has_avx512bf16();
    return before;
}

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
// CPU has it; F32: AVX-512 FMAs when the CPU has them. Otherwise a portable vector loop compiled
// for AVX-512, AVX2 and baseline x86-64 (GCC target_clones). A gated product's W1 and W3 rows
// share one pass over X.
#include <immintrin.h>

#include "cpu_features.h"
#include "elements.h"
#include "gemm.h"
#include "monostream_cpu.h"
#include "pool.h"

#define ROW_BLOCK 16 // threads share the rows in blocks of this many
#define PREFETCH 4096 // bytes of W ahead (two 1024-wide BF16 rows) that the AVX-512 loop asks for
#define PREFETCH_MIN_ROWS 4 // ... from this many rows of X on
#define X_IN_L1 (24 << 10) // bytes of X rows that stay in L1 beside the W stream

typedef struct {
    int dtype;
    const void *x;
    const void *w;  // W, or W1 of a gated product
    const void *w3; // NULL, or W3 of a gated product
    void *y;
    int64_t m, k, n;
} job_t;

static int portable = 0; // ms_cpu_prefer_portable: every product through the portable loop
static int use_dp = -1; // AVX512-BF16 for BF16 products; set on first use

static int dot_products(void) {
    if (use_dp < 0) {
        use_dp = cpu_has_avx512bf16();
    }
    return use_dp;
}

static int use_f32_vectors = -1; // the AVX-512 loop for F32 products; set on first use

static int f32_vectors(void) {
    if (use_f32_vectors < 0) {
        use_f32_vectors = cpu_has_avx512f();
    }
    return use_f32_vectors && !portable;
}

/** Writes y[mb + g, n] for g < G from the dot products of W (and W3) row n. */
static inline __attribute__((always_inline)) void emit(const job_t *j, int64_t n, int64_t mb, int G,
                                                       const float *a, const float *b) {
    for (int g = 0; g < G; g++) {
        store_elem(j->y, (mb + g) * j->n + n, j->w3 ? swiglu(a[g], b[g], j->dtype) : a[g], j->dtype);
    }
}

/**
 * The walk over W rows n0 .. n1-1 both loops share. X rows that overflow L1 beside the W stream
 * (many rows, long rows) are read from L2 once per W row: then W rows go two at a time, X rows in
 * groups of 4 through PAIR_DOTS (filling o0[4], o1[4] for W rows n, n + 1 from X rows mb..mb+3),
 * which halves that (BF16 w2 at 8 rows: a quarter faster). Otherwise, and for what is left, one
 * W row at a time, X rows in groups of 4, 2, 1 through ROW (n, mb, G). A gated product never
 * pairs: its W1 and W3 rows already share their pass over X.
 */
#define WALK_ROWS(j, n0, n1, elem_bytes, PAIR_DOTS, ROW)                                                  \
    do {                                                                                                  \
        const int pairs = !(j)->w3 && (j)->m >= 4 && (j)->m * (j)->k * (elem_bytes) > X_IN_L1;           \
        int64_t n = (n0);                                                                                 \
        for (; pairs && n + 1 < (n1); n += 2) {                                                           \
            int64_t mb = 0;                                                                               \
            for (; (j)->m - mb >= 4; mb += 4) {                                                           \
                float o0[4], o1[4], none[4] = {0};                                                        \
                PAIR_DOTS;                                                                                \
                emit((j), n, mb, 4, o0, none);                                                            \
                emit((j), n + 1, mb, 4, o1, none);                                                        \
            }                                                                                             \
            for (; mb < (j)->m; mb++) {                                                                   \
                for (int64_t pair_n = n; pair_n < n + 2; pair_n++) {                                      \
                    const int G = 1;                                                                      \
                    { const int64_t n = pair_n; ROW; }                                                    \
                }                                                                                         \
            }                                                                                             \
        }                                                                                                 \
        for (; n < (n1); n++) {                                                                           \
            int64_t mb = 0;                                                                               \
            for (; (j)->m - mb >= 4; mb += 4) {                                                           \
                const int G = 4;                                                                          \
                ROW;                                                                                      \
            }                                                                                             \
            for (; (j)->m - mb >= 2; mb += 2) {                                                           \
                const int G = 2;                                                                          \
                ROW;                                                                                      \
            }                                                                                             \
            if (mb < (j)->m) {                                                                            \
                const int G = 1;                                                                          \
                ROW;                                                                                      \
            }                                                                                             \
        }                                                                                                 \
    } while (0)

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

/** The sum of W row n · X row r from its two vector accumulators and the elements from c on. */
static inline __attribute__((always_inline)) float finish_portable(const job_t *j, const void *w, int64_t n, int64_t r,
                                                                   int64_t c, v16f acc0, v16f acc1) {
    float s = 0;
    for (int64_t t = c; t < j->k; t++) {
        s += load_elem(w, n * j->k + t, j->dtype) * load_elem(j->x, r * j->k + t, j->dtype);
    }
    v16f sum = acc0 + acc1;
    for (int l = 0; l < 16; l++) {
        s += sum[l];
    }
    return s;
}

/**
 * out[g] = W row n · X row mb+g for g < G and, when two, out2[g] = W2 row n2 · X row mb+g too,
 * with each chunk of X loaded once for both rows. G, two and bf16 are constants at each call, so
 * the sums stay in registers; every sum is accumulated the same way either way (same bits).
 */
static inline __attribute__((always_inline)) void dots_portable(const job_t *j, const void *w, int64_t n,
                                                                const void *w2, int64_t n2, int64_t mb, const int G,
                                                                const int two, const int bf16, float *out,
                                                                float *out2) {
    const int64_t k = j->k, vk = k & ~(int64_t) 31;
    v16f acc[4][2], acc2[4][2];
    for (int g = 0; g < G; g++) {
        acc[g][0] = acc[g][1] = acc2[g][0] = acc2[g][1] = (v16f) {0};
    }
    int64_t c = 0;
    for (; c < vk; c += 32) {
        v16f w0 = load16(w, n * k + c, bf16);
        v16f w1 = load16(w, n * k + c + 16, bf16);
        v16f u0 = two ? load16(w2, n2 * k + c, bf16) : w0;
        v16f u1 = two ? load16(w2, n2 * k + c + 16, bf16) : w1;
        for (int g = 0; g < G; g++) {
            v16f x0 = load16(j->x, (mb + g) * k + c, bf16);
            v16f x1 = load16(j->x, (mb + g) * k + c + 16, bf16);
            acc[g][0] += w0 * x0;
            acc[g][1] += w1 * x1;
            if (two) {
                acc2[g][0] += u0 * x0;
                acc2[g][1] += u1 * x1;
            }
        }
    }
    for (int g = 0; g < G; g++) {
        out[g] = finish_portable(j, w, n, mb + g, c, acc[g][0], acc[g][1]);
        if (two) {
            out2[g] = finish_portable(j, w2, n2, mb + g, c, acc2[g][0], acc2[g][1]);
        }
    }
}

static inline __attribute__((always_inline)) void row_portable(const job_t *j, int64_t n, int64_t mb, const int G,
                                                               const int bf16) {
    float a[4], b[4] = {0};
    if (j->w3) {
        dots_portable(j, j->w, n, j->w3, n, mb, G, 1, bf16, a, b);
    } else {
        dots_portable(j, j->w, n, NULL, 0, mb, G, 0, bf16, a, NULL);
    }
    emit(j, n, mb, G, a, b);
}

static inline __attribute__((always_inline)) void rows_portable_of(const job_t *j, int64_t n0, int64_t n1,
                                                                   const int bf16) {
    WALK_ROWS(j, n0, n1, bf16 ? 2 : 4, dots_portable(j, j->w, n, j->w, n + 1, mb, 4, 1, bf16, o0, o1),
              row_portable(j, n, mb, G, bf16));
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void rows_portable(const job_t *j, int64_t n0, int64_t n1) {
    if (j->dtype == MS_BF16) {
        rows_portable_of(j, n0, n1, 1);
    } else {
        rows_portable_of(j, n0, n1, 0);
    }
}

// ------------------------------------------------------------------ AVX-512 (BF16: AVX512-BF16)

/** 64 bytes of an array of 2-byte (BF16) or 4-byte (F32) elements, from element at. */
__attribute__((target("avx512f,avx512bw")))
static inline __attribute__((always_inline)) __m512i vload(const void *base, int64_t at, const int f32) {
    return _mm512_loadu_si512((const char *) base + at * (f32 ? 4 : 2));
}

/** The elements at .. at + left - 1 (at most one vector's worth), zeros after them. */
__attribute__((target("avx512f,avx512bw")))
static inline __attribute__((always_inline)) __m512i vload_tail(const void *base, int64_t at, int64_t left,
                                                              const int f32) {
    if (f32) {
        const __mmask16 mask = left >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << left) - 1);
        return _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, (const float *) base + at));
    }
    const __mmask32 mask = left >= 32 ? (__mmask32) ~0u : (__mmask32) ((1u << left) - 1);
    return _mm512_maskz_loadu_epi16(mask, (const uint16_t *) base + at);
}

/** acc + w·x lane by lane: one FMA per F32 lane, or a BF16 pair's products per lane (vdpbf16ps). */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) __m512 vmadd(__m512 acc, __m512i w, __m512i x, const int f32) {
    return f32 ? _mm512_fmadd_ps(_mm512_castsi512_ps(w), _mm512_castsi512_ps(x), acc)
               : _mm512_dpbf16_ps(acc, (__m512bh) w, (__m512bh) x);
}

/**
 * out[g] = W row n · X row mb+g for g < G and, when two, out2[g] = W2 row n2 · X row mb+g too,
 * with each chunk of X loaded once for both rows. Two accumulators per sum over chunks of two
 * vectors, then the tail; G, two and f32 are constants at each call, so the sums stay in registers,
 * and every sum is accumulated the same way either way (same bits). In F32 the BF16 instructions
 * are dead code and never emitted.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void dots_vec(const job_t *j, const void *w, int64_t n,
                                                           const void *w2, int64_t n2, int64_t mb, const int G,
                                                           const int two, const int f32, float *out, float *out2) {
    const int64_t k = j->k, lanes = f32 ? 16 : 32, vk = k & ~(2 * lanes - 1);
    const char *r0 = (const char *) w + n * k * (f32 ? 4 : 2);
    const char *r1 = two ? (const char *) w2 + n2 * k * (f32 ? 4 : 2) : r0;
    __m512 a[4][2], b[4][2];
    for (int g = 0; g < G; g++) {
        a[g][0] = a[g][1] = b[g][0] = b[g][1] = _mm512_setzero_ps();
    }
    int64_t c = 0;
    for (; c < vk; c += 2 * lanes) {
        // with several rows of X the loop computes long enough per byte of W for the hardware
        // prefetcher to fall behind: asking ahead made BF16 at 8 rows a quarter faster and F32 at 8
        // rows 15 % faster, but one row 10-20 % slower (the hardware prefetcher keeps up there)
        if (j->m >= PREFETCH_MIN_ROWS) {
            _mm_prefetch(r0 + c * (f32 ? 4 : 2) + PREFETCH, _MM_HINT_T0);
            if (two) {
                _mm_prefetch(r1 + c * (f32 ? 4 : 2) + PREFETCH, _MM_HINT_T0);
            }
        }
        const __m512i w0 = vload(r0, c, f32), w1 = vload(r0, c + lanes, f32);
        const __m512i u0 = two ? vload(r1, c, f32) : w0, u1 = two ? vload(r1, c + lanes, f32) : w1;
        for (int g = 0; g < G; g++) {
            const __m512i x0 = vload(j->x, (mb + g) * k + c, f32), x1 = vload(j->x, (mb + g) * k + c + lanes, f32);
            a[g][0] = vmadd(a[g][0], w0, x0, f32);
            a[g][1] = vmadd(a[g][1], w1, x1, f32);
            if (two) {
                b[g][0] = vmadd(b[g][0], u0, x0, f32);
                b[g][1] = vmadd(b[g][1], u1, x1, f32);
            }
        }
    }
    for (; c < k; c += lanes) {
        const __m512i w0 = vload_tail(r0, c, k - c, f32), u0 = two ? vload_tail(r1, c, k - c, f32) : w0;
        for (int g = 0; g < G; g++) {
            const __m512i x0 = vload_tail(j->x, (mb + g) * k + c, k - c, f32);
            a[g][0] = vmadd(a[g][0], w0, x0, f32);
            if (two) {
                b[g][0] = vmadd(b[g][0], u0, x0, f32);
            }
        }
    }
    for (int g = 0; g < G; g++) {
        out[g] = _mm512_reduce_add_ps(_mm512_add_ps(a[g][0], a[g][1]));
        if (two) {
            out2[g] = _mm512_reduce_add_ps(_mm512_add_ps(b[g][0], b[g][1]));
        }
    }
}

/** W row n (with W3 row n of a gated product, in one pass over X) against X rows mb..mb+G-1. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void row_vec(const job_t *j, int64_t n, int64_t mb, const int G,
                                                          const int f32) {
    float a[4], b[4] = {0};
    if (j->w3) {
        dots_vec(j, j->w, n, j->w3, n, mb, G, 1, f32, a, b);
    } else {
        dots_vec(j, j->w, n, NULL, 0, mb, G, 0, f32, a, NULL);
    }
    emit(j, n, mb, G, a, b);
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void rows_vec_of(const job_t *j, int64_t n0, int64_t n1, const int f32) {
    WALK_ROWS(j, n0, n1, f32 ? 4 : 2, dots_vec(j, j->w, n, j->w, n + 1, mb, 4, 1, f32, o0, o1),
              row_vec(j, n, mb, G, f32));
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_vec_bf16(const job_t *j, int64_t n0, int64_t n1) {
    rows_vec_of(j, n0, n1, 0);
}

/** F32 on AVX-512 CPUs, with or without AVX512-BF16 (see dots_vec). */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_vec_f32(const job_t *j, int64_t n0, int64_t n1) {
    rows_vec_of(j, n0, n1, 1);
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
    if (j->dtype == MS_BF16 ? dot_products() : f32_vectors()) {
        j->dtype == MS_BF16 ? rows_vec_bf16(j, n0, n1) : rows_vec_f32(j, n0, n1);
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
    dot_products(); // decided before any worker reads them
    f32_vectors();
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

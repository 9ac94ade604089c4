// Decode-sized linear layers: Y[M,N] = X[M,K] · W[N,K]ᵀ for a few rows M, with the weight read
// once from memory at close to the machine's read bandwidth. libtorch's oneDNN GEMV reaches
// 55-75 % of it on the machines we measured; decode is mostly these products, so they get their
// own kernel. From GEMM_MIN_ROWS rows on (prefill), products go to the blocked product of gemm.c
// instead where the CPU has what it needs (takes_gemm).
//
// BF16: AVX512-BF16 (vdpbf16ps: bf16 pairs multiplied exactly, added into fp32 lanes) when the
// CPU has it, else on AVX-512 CPUs the even and odd elements of each pair widened to fp32 (a
// shift and a mask) into FMAs of their own; F32: AVX-512 FMAs when the CPU has them
// (rows_vec_*). For up to 3 rows of X the weight is read in memory order, one row at a time: one
// linear stream per thread, which the hardware prefetcher follows (interleaving 4 rows was a
// third slower). From 4 rows of X on it goes in blocks of 4 weight rows by 4 X rows, 16
// accumulators, each vector loaded once per block: 8 sequences decode 18 % (BF16) and 43 % (F32)
// faster than with 2 weight rows by 4 X rows and two accumulators per sum, one sequence 6 % slower
// (BF16; each sum is now one chain). Every sum is accumulated the same way in both, so a row's
// result never depends on the batch. Both ask for the weight 16 KB ahead into L2, every cache line
// of it: the blocks compute long enough per byte for the hardware prefetcher alone to fall behind.
//
// Elsewhere a portable vector loop compiled for AVX-512, AVX2 and baseline x86-64 (GCC
// target_clones), with its own accumulation (also independent of the batch).
#include <immintrin.h>

#include "cpu_features.h"
#include "elements.h"
#include "gemm.h"
#include "monostream_cpu.h"
#include "pool.h"

#define ROW_BLOCK 16 // threads share the rows in blocks of this many
// bytes of W ahead that the AVX-512 loop asks for (into L2, every line; see block_vec): two blocks
// of 4 rows of 1024 BF16 weights, 4-8 % faster at 8 rows than one block ahead
#define PREFETCH 16384
#define X_IN_L1 (24 << 10) // bytes of X rows that stay in L1 beside the W stream (portable loop)

typedef struct {
    int dtype;
    const void *x;
    const void *w;  // W, or W1 of a gated product
    const void *w3; // NULL, or W3 of a gated product
    void *y;
    int64_t m, k, n;
} job_t;

static int portable = 0;    // ms_cpu_prefer_portable: every product through the portable loop
static int prefer_wide = 0; // ms_cpu_prefer_wide: BF16 widened to fp32 even with AVX512-BF16
static int use_dp = -1;     // AVX512-BF16 for BF16 products; set on first use

static int dot_products(void) {
    if (use_dp < 0) {
        use_dp = !portable && !prefer_wide && cpu_has_avx512bf16();
    }
    return use_dp;
}

int cpu_bf16_dot_products(void) {
    return dot_products();
}

static int use_f32_vectors = -1; // the AVX-512 loops of F32 products and of BF16 ones without AVX512-BF16

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

/**
 * W rows n0 .. n1-1 against every X row. X rows that overflow L1 beside the W stream (many rows,
 * long rows) are read from L2 once per W row: then W rows go two at a time, X rows in groups of 4,
 * which halves that (BF16 w2 at 8 rows: a quarter faster). Otherwise, and for what is left, one W
 * row at a time, X rows in groups of 4, 2, 1. A gated product never pairs: its W1 and W3 rows
 * already share their pass over X.
 */
static inline __attribute__((always_inline)) void rows_portable_of(const job_t *j, int64_t n0, int64_t n1,
                                                                   const int bf16) {
    const int pairs = !j->w3 && j->m >= 4 && j->m * j->k * (bf16 ? 2 : 4) > X_IN_L1;
    int64_t n = n0;
    for (; pairs && n + 1 < n1; n += 2) {
        int64_t mb = 0;
        for (; j->m - mb >= 4; mb += 4) {
            float o0[4], o1[4], none[4] = {0};
            dots_portable(j, j->w, n, j->w, n + 1, mb, 4, 1, bf16, o0, o1);
            emit(j, n, mb, 4, o0, none);
            emit(j, n + 1, mb, 4, o1, none);
        }
        for (; mb < j->m; mb++) {
            row_portable(j, n, mb, 1, bf16);
            row_portable(j, n + 1, mb, 1, bf16);
        }
    }
    for (; n < n1; n++) {
        int64_t mb = 0;
        for (; j->m - mb >= 4; mb += 4) {
            row_portable(j, n, mb, 4, bf16);
        }
        for (; j->m - mb >= 2; mb += 2) {
            row_portable(j, n, mb, 2, bf16);
        }
        if (mb < j->m) {
            row_portable(j, n, mb, 1, bf16);
        }
    }
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

/** The even (lo) and odd (hi) BF16 elements of v, each widened to fp32 in its 32-bit lane. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) void widen_pairs(__m512i v, __m512 *lo, __m512 *hi) {
    *lo = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *hi = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int) 0xffff0000u)));
}

/**
 * One chunk of X rows g < G, as the products take it: the vector itself, or when wide its even
 * and odd BF16 elements widened (once per chunk for every weight row of the block).
 */
typedef struct {
    __m512i v[4];
    __m512 even[4], odd[4];
} x_chunk;

/** acc[g] (and odd[g] when wide) plus the weight chunk wv times chunk g of X, for g < G. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void chunk_madd(__m512 acc[4], __m512 odd[4], __m512i wv,
                                                             const x_chunk *x, const int G, const int f32,
                                                             const int wide) {
    if (wide) {
        __m512 w_even, w_odd;
        widen_pairs(wv, &w_even, &w_odd);
        for (int g = 0; g < G; g++) {
            acc[g] = _mm512_fmadd_ps(w_even, x->even[g], acc[g]);
            odd[g] = _mm512_fmadd_ps(w_odd, x->odd[g], odd[g]);
        }
    } else {
        for (int g = 0; g < G; g++) {
            acc[g] = vmadd(acc[g], wv, x->v[g], f32);
        }
    }
}

/**
 * sums[r][g] = row r of the weight block · X row mb+g, for r < R and g < G, where the block's row r
 * is W row n + r, or for a gated product (R even) W1 row n + r for r < R/2 and W3 row n + r - R/2
 * after that. One accumulator per sum (two when wide: one for the even elements of the BF16
 * pairs, one for the odd), over chunks of one vector in order, then the masked tail: a sum is
 * accumulated the same way whatever R, G and the other rows are (same bits). Each chunk of X and
 * of W is loaded once for the whole block. R, G, f32 and wide are constants at each call, so the
 * accumulators stay in registers (R·G ≤ 8 when wide); without AVX512-BF16 the BF16 instructions
 * are dead code, never emitted.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void block_vec(const job_t *j, int64_t n, int64_t mb, const int R,
                                                            const int G, const int f32, const int wide,
                                                            float sums[4][4]) {
    const int64_t k = j->k, lanes = f32 ? 16 : 32, vk = k & ~(2 * lanes - 1);
    const int esz = f32 ? 4 : 2;
    const char *rows[4];
    for (int r = 0; r < R; r++) {
        const int half = j->w3 ? R / 2 : R;
        rows[r] = (const char *) (r < half ? j->w : j->w3) + (n + (r < half ? r : r - half)) * k * esz;
    }
    __m512 acc[4][4], odd[4][4];
    for (int r = 0; r < R; r++) {
        for (int g = 0; g < G; g++) {
            acc[r][g] = odd[r][g] = _mm512_setzero_ps();
        }
    }
    int64_t c = 0;
    for (; c < vk; c += 2 * lanes) {
        // both cache lines of the 128 bytes a step takes from each row, into L2: with the hardware
        // prefetcher alone, or asking for one line, or into L1, 8 rows of X were 20-35 % slower
        // (the loop computes long enough per byte of W for the hardware prefetcher to fall behind);
        // 1 to 3 rows were the same or faster with it
        for (int r = 0; r < R; r++) {
            _mm_prefetch(rows[r] + c * esz + PREFETCH, _MM_HINT_T1);
            _mm_prefetch(rows[r] + c * esz + PREFETCH + 64, _MM_HINT_T1);
        }
        for (int half = 0; half < 2; half++) {
            x_chunk xc;
            for (int g = 0; g < G; g++) {
                xc.v[g] = vload(j->x, (mb + g) * k + c + half * lanes, f32);
                if (wide) {
                    widen_pairs(xc.v[g], &xc.even[g], &xc.odd[g]);
                }
            }
            for (int r = 0; r < R; r++) {
                chunk_madd(acc[r], odd[r], vload(rows[r], c + half * lanes, f32), &xc, G, f32, wide);
            }
        }
    }
    for (; c < k; c += lanes) {
        x_chunk xc;
        for (int g = 0; g < G; g++) {
            xc.v[g] = vload_tail(j->x, (mb + g) * k + c, k - c, f32);
            if (wide) {
                widen_pairs(xc.v[g], &xc.even[g], &xc.odd[g]);
            }
        }
        for (int r = 0; r < R; r++) {
            chunk_madd(acc[r], odd[r], vload_tail(rows[r], c, k - c, f32), &xc, G, f32, wide);
        }
    }
    for (int r = 0; r < R; r++) {
        for (int g = 0; g < G; g++) {
            sums[r][g] = _mm512_reduce_add_ps(wide ? _mm512_add_ps(acc[r][g], odd[r][g]) : acc[r][g]);
        }
    }
}

/** The outputs of `rows` W rows from n (of W1 and W3 when gated) for X rows mb .. mb+G-1. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void block_out(const job_t *j, int64_t n, int64_t mb, const int rows,
                                                            const int G, const int f32, const int wide) {
    float sums[4][4];
    if (j->w3 && 2 * rows <= 4) { // always, when gated: its blocks have 2 rows at most (rows_vec_of)
        block_vec(j, n, mb, 2 * rows, G, f32, wide, sums);
        for (int r = 0; r < rows; r++) {
            emit(j, n + r, mb, G, sums[r], sums[rows + r]);
        }
    } else {
        block_vec(j, n, mb, rows, G, f32, wide, sums);
        for (int r = 0; r < rows; r++) {
            emit(j, n + r, mb, G, sums[r], sums[r]);
        }
    }
}

#define BLOCK_CASE_G(rows, G, f32, wide) \
    case G: block_out(j, n, mb, rows, G, f32, wide); break;
#define BLOCK_CASE(rows, f32, wide)                                                                               \
    case rows:                                                                                                    \
        switch (g) { BLOCK_CASE_G(rows, 1, f32, wide) BLOCK_CASE_G(rows, 2, f32, wide)                            \
                     BLOCK_CASE_G(rows, 3, f32, wide) BLOCK_CASE_G(rows, 4, f32, wide) }                          \
        break;

/**
 * W rows n0 .. n1-1 against every X row: one W row at a time for a few rows of X (one weight
 * stream per thread, which the hardware prefetcher follows best), and from 4 rows of X on in
 * blocks of 4 W rows (2 of W1 and 2 of W3 when gated) by 4 X rows, each chunk loaded once per
 * block (16 accumulators); wide, with two accumulators per sum, in blocks of half as many W rows.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void rows_vec_of(const job_t *j, int64_t n0, int64_t n1, const int f32,
                                                              const int wide) {
    const int64_t step = j->m < 4 ? 1 : (j->w3 ? 2 : 4) / (wide ? 2 : 1);
    for (int64_t n = n0; n < n1; n += step) {
        const int rows = (int) (n1 - n < step ? n1 - n : step);
        for (int64_t mb = 0; mb < j->m; mb += 4) {
            const int g = (int) (j->m - mb < 4 ? j->m - mb : 4);
            if (wide || j->w3) {
                switch (rows) { BLOCK_CASE(1, f32, wide) BLOCK_CASE(2, f32, wide) }
            } else {
                switch (rows) {
                    BLOCK_CASE(1, f32, wide) BLOCK_CASE(2, f32, wide) BLOCK_CASE(3, f32, wide)
                    BLOCK_CASE(4, f32, wide)
                }
            }
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_vec_bf16(const job_t *j, int64_t n0, int64_t n1) {
    rows_vec_of(j, n0, n1, 0, 0);
}

/** BF16 on AVX-512 CPUs without AVX512-BF16 (see block_vec). */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_vec_wide(const job_t *j, int64_t n0, int64_t n1) {
    rows_vec_of(j, n0, n1, 0, 1);
}

/** F32 on AVX-512 CPUs, with or without AVX512-BF16 (see block_vec). */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void rows_vec_f32(const job_t *j, int64_t n0, int64_t n1) {
    rows_vec_of(j, n0, n1, 1, 0);
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
    if (j->dtype == MS_F32) {
        f32_vectors() ? rows_vec_f32(j, n0, n1) : rows_portable(j, n0, n1);
    } else if (dot_products()) {
        rows_vec_bf16(j, n0, n1);
    } else {
        f32_vectors() ? rows_vec_wide(j, n0, n1) : rows_portable(j, n0, n1);
    }
}

/** Whether a product of dtype with rows of k elements can take gemm on this CPU. */
static int takes_gemm(int dtype, int64_t k) {
    if (portable) {
        return 0;
    }
    // BF16 without AVX512-BF16 widens its operands to fp32 on AVX-512 CPUs (gemm.c)
    return (dtype == MS_F32 || k % 2 == 0) && cpu_has_avx512f();
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

int ms_cpu_has_amx_bf16(void) {
    return cpu_has_amx_bf16();
}

int cpu_prefer_portable(void) {
    return portable;
}

int ms_cpu_prefer_portable(int prefer) {
    int before = portable;
    portable = prefer != 0;
    use_dp = -1;
    return before;
}

int ms_cpu_prefer_wide(int prefer) {
    int before = prefer_wide;
    prefer_wide = prefer != 0;
    use_dp = -1;
    return before;
}

// Prefill-sized linear layers: Y[M,N] = X[M,K] · W[N,K]ᵀ for many rows M (a prompt's tokens),
// BF16 on AVX512-BF16 CPUs and F32 on AVX-512 CPUs. libtorch hands these to oneDNN, which on CPUs
// without AMX reaches 330-400 GFLOP/s in BF16 and 160-190 in F32 on two cores at the model's
// shapes; this kernel reaches 390-460 and 205-215 on the same cores, with the weight in the plain
// [N,K] layout the decode kernels stream, so no second, packed copy of it is kept.
//
// The vector lanes run along the tokens, not along K: X is repacked per call into blocks of 16
// tokens of 32-bit units, [K units][16 tokens], a unit being a K pair of BF16 or one F32, and each
// weight unit W[n, unit p] is broadcast to all 16 lanes. One vdpbf16ps (BF16) or vfmadd231ps (F32)
// then adds 16 tokens' products of that unit. A tile of 4 token blocks (64 tokens) × 6 weight rows
// keeps 24 fp32 accumulators in registers; each step over a unit loads 4 vectors of X and 6
// broadcasts of W for 24 products, about one per cycle, the rate these cores issue them at.
//
// Threads share the weight rows; each walks its rows once per pass over 256 tokens, whose packed
// X (512 KB for BF16 at K = 1024) stays in L2 while the 6-row weight panel sits in L1.
//
// A row's sums do not depend on the other rows of the call: every output is one fp32 lane
// accumulated over K in order, whatever the tile or pass it falls in.
#include <immintrin.h>
#include <stdlib.h>

#include "elements.h"
#include "gemm.h"
#include "pool.h"
#include "vector_math.h"

#define TILE_BLOCKS 4  // 16-token blocks per tile
#define TILE_ROWS 6    // weight rows per tile: 6 of W, or 3 of W1 and the same 3 of W3
#define PASS_BLOCKS 16 // 16-token blocks per pass over a thread's weight rows

typedef struct {
    int f32;              // F32 operands, else BF16
    const void *x;
    const void *w;        // W, or W1 of a gated product
    const void *w3;       // NULL, or W3 of a gated product
    const void *bias;     // NULL, or [N] added to the sums before rounding (never with W3)
    void *y;
    uint32_t *xp;         // X packed: [M/16 blocks][units][16], the last block zero-padded
    int64_t m, k, n;
    int64_t units;        // 32-bit units per row: K/2 in BF16, K in F32
    int64_t blocks;       // 16-token blocks of X
} gemm_t;

static void pack_share(const void *ctx, int part, int parts) {
    const gemm_t *g = ctx;
    const int64_t units = g->units;
    for (int64_t b = g->blocks * part / parts; b < g->blocks * (part + 1) / parts; b++) {
        uint32_t *out = g->xp + b * units * 16;
        for (int lane = 0; lane < 16; lane++) {
            const int64_t r = b * 16 + lane;
            if (r < g->m) {
                const uint32_t *src = (const uint32_t *) g->x + r * units;
                for (int64_t p = 0; p < units; p++) {
                    out[p * 16 + lane] = src[p];
                }
            } else {
                for (int64_t p = 0; p < units; p++) {
                    out[p * 16 + lane] = 0;
                }
            }
        }
    }
}

/** x rounded to BF16 and back, lane by lane, with the rounding and NaN rule of f32_to_bf16. */
__attribute__((target("avx512f,avx512bw")))
static inline __attribute__((always_inline)) __m512 round16(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, bits, _mm512_set1_epi32(0x400000));
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int) 0xffff0000u)));
}

/** swiglu (elements.h) of 16 lanes: silu(round(a)) rounded, times round(b), rounding to BF16 unless f32. */
__attribute__((target("avx512f,avx512bw")))
static inline __attribute__((always_inline)) __m512 swiglu16(__m512 a, __m512 b, const int f32) {
    const __m512 gate = f32 ? a : round16(a);
    const __m512 silu = _mm512_div_ps(gate, _mm512_add_ps(_mm512_set1_ps(1.0f),
                                                          exp16(_mm512_sub_ps(_mm512_setzero_ps(), gate))));
    return f32 ? _mm512_mul_ps(silu, b) : _mm512_mul_ps(round16(silu), round16(b));
}

/**
 * Token blocks b0 .. b0+U-1 against weight rows n0 .. n0+R-1 (and the same rows of W3 when gated);
 * U, R, gated and f32 are constants at each call, so the accumulators stay in registers.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void tile(const gemm_t *g, int64_t n0, int64_t b0, const int U,
                                                       const int R, const int gated, const int f32) {
    const int V = gated ? 2 * R : R;
    const int64_t units = g->units;
    const uint32_t *rows[TILE_ROWS];
    for (int v = 0; v < R; v++) {
        rows[v] = (const uint32_t *) g->w + (n0 + v) * units;
        if (gated) {
            rows[R + v] = (const uint32_t *) g->w3 + (n0 + v) * units;
        }
    }
    __m512 acc[TILE_BLOCKS][TILE_ROWS];
    for (int u = 0; u < U; u++) {
        for (int v = 0; v < V; v++) {
            acc[u][v] = _mm512_setzero_ps();
        }
    }
    const uint32_t *xb = g->xp + b0 * units * 16;
    for (int64_t p = 0; p < units; p++) {
        __m512i xv[TILE_BLOCKS];
        for (int u = 0; u < U; u++) {
            xv[u] = _mm512_loadu_si512(xb + (u * units + p) * 16);
        }
        for (int v = 0; v < V; v++) {
            const __m512i unit = _mm512_set1_epi32((int) rows[v][p]);
            for (int u = 0; u < U; u++) {
                acc[u][v] = f32 ? _mm512_fmadd_ps(_mm512_castsi512_ps(xv[u]), _mm512_castsi512_ps(unit), acc[u][v])
                                : _mm512_dpbf16_ps(acc[u][v], (__m512bh) xv[u], (__m512bh) unit);
            }
        }
    }
    // the epilogue in vectors (bias, gate, BF16 rounding), then each token's R outputs stored
    // one by one: the outputs of a row of Y lie across the accumulators of a tile
    union {
        float f[TILE_ROWS][TILE_BLOCKS * 16];
        uint16_t h[TILE_ROWS][TILE_BLOCKS * 16];
    } out;
    for (int v = 0; v < R; v++) {
        const __m512 bias = g->bias ? _mm512_set1_ps(load_elem(g->bias, n0 + v, f32 ? MS_F32 : MS_BF16))
                                    : _mm512_setzero_ps();
        for (int u = 0; u < U; u++) {
            __m512 sum = gated ? swiglu16(acc[u][v], acc[u][R + v], f32) : acc[u][v];
            if (g->bias) {
                sum = _mm512_add_ps(sum, bias);
            }
            if (f32) {
                _mm512_storeu_ps(&out.f[v][u * 16], sum);
            } else {
                // round16 rounds as f32_to_bf16 does; the upper halves are the BF16 bits
                _mm256_storeu_si256((__m256i *) &out.h[v][u * 16],
                                    _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(round16(sum)), 16)));
            }
        }
    }
    for (int i = 0; i < U * 16 && b0 * 16 + i < g->m; i++) {
        const int64_t at = (b0 * 16 + i) * g->n + n0;
        for (int v = 0; v < R; v++) {
            if (f32) {
                ((float *) g->y)[at + v] = out.f[v][i];
            } else {
                ((uint16_t *) g->y)[at + v] = out.h[v][i];
            }
        }
    }
}

#define TILE_CASE_U(U, R, gated, f32) \
    case U: tile(g, n0, b0, U, R, gated, f32); break;
#define TILE_CASE_R(R, gated, f32)                                                                                \
    case R:                                                                                                        \
        switch (u) { TILE_CASE_U(1, R, gated, f32) TILE_CASE_U(2, R, gated, f32) TILE_CASE_U(3, R, gated, f32)    \
                     TILE_CASE_U(4, R, gated, f32) }                                                               \
        break;
#define ANY_TILE(f32)                                                                                              \
    if (g->w3) {                                                                                                   \
        switch (r) { TILE_CASE_R(1, 1, f32) TILE_CASE_R(2, 1, f32) TILE_CASE_R(3, 1, f32) }                        \
    } else {                                                                                                       \
        switch (r) {                                                                                               \
            TILE_CASE_R(1, 0, f32) TILE_CASE_R(2, 0, f32) TILE_CASE_R(3, 0, f32) TILE_CASE_R(4, 0, f32)            \
            TILE_CASE_R(5, 0, f32) TILE_CASE_R(6, 0, f32)                                                          \
        }                                                                                                          \
    }

/** The BF16 tile of u token blocks (1..4) and r weight rows (1..6, or 1..3 when gated). */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_bf16(const gemm_t *g, int64_t n0, int64_t b0, int u, int r) {
    ANY_TILE(0)
}

/**
 * The F32 tile, as tile_bf16. Compiled with the BF16 target too, so that tile() inlines; with f32
 * constant the BF16 instructions are dead code and never emitted, so AVX-512 CPUs without
 * AVX512-BF16 run it.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_f32(const gemm_t *g, int64_t n0, int64_t b0, int u, int r) {
    ANY_TILE(1)
}

static void product_share(const void *ctx, int part, int parts) {
    const gemm_t *g = ctx;
    const int64_t step = g->w3 ? TILE_ROWS / 2 : TILE_ROWS;
    const int64_t panels = (g->n + step - 1) / step;
    const int64_t n_begin = panels * part / parts * step;
    int64_t n_end = panels * (part + 1) / parts * step;
    if (n_end > g->n) {
        n_end = g->n;
    }
    for (int64_t pass = 0; pass < g->blocks; pass += PASS_BLOCKS) {
        const int64_t pass_end = pass + PASS_BLOCKS < g->blocks ? pass + PASS_BLOCKS : g->blocks;
        for (int64_t n0 = n_begin; n0 < n_end; n0 += step) {
            const int r = (int) (n_end - n0 < step ? n_end - n0 : step);
            for (int64_t b0 = pass; b0 < pass_end; b0 += TILE_BLOCKS) {
                const int u = (int) (pass_end - b0 < TILE_BLOCKS ? pass_end - b0 : TILE_BLOCKS);
                g->f32 ? tile_f32(g, n0, b0, u, r) : tile_bf16(g, n0, b0, u, r);
            }
        }
    }
}

int gemm(int dtype, const void *x, int64_t m, int64_t k, const void *w, const void *w3, const void *bias, int64_t n,
         void *y) {
    const int f32 = dtype == MS_F32;
    if ((!f32 && k % 2 != 0) || (w3 && bias)) {
        return MS_CPU_EUNSUPPORTED;
    }
    const int64_t blocks = (m + 15) / 16;
    const int64_t units = f32 ? k : k / 2;
    uint32_t *xp = aligned_alloc(64, (size_t) (blocks * 16 * units * 4));
    if (!xp) {
        return MS_CPU_ENOMEM;
    }
    gemm_t g = {f32, x, w, w3, bias, y, xp, m, k, n, units, blocks};
    pool_run(pack_share, &g, blocks >= 8);
    pool_run(product_share, &g, 1);
    free(xp);
    return MS_CPU_OK;
}

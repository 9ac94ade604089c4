// Prefill-sized linear layers: Y[M,N] = X[M,K] · W[N,K]ᵀ for many rows M (a prompt's tokens),
// F32 and BF16 on AVX-512 CPUs, with the weight in the plain [N,K] layout the decode kernels
// stream, so no second, packed copy of it is kept. On CPUs without AMX this runs at or above
// libtorch's oneDNN GEMM at the model's shapes (figures in the README).
//
// The vector lanes run along the tokens, not along K: X is repacked into blocks of 16 tokens of
// 32-bit units, [K units][16 tokens], a unit being a K pair of BF16 or one F32 (16×16 transposes),
// and each weight unit W[n, unit p] is broadcast to all 16 lanes. One vdpbf16ps (BF16) or
// vfmadd231ps (F32) then adds 16 tokens' products of that unit. A tile of 4 token blocks
// (64 tokens) × 6 weight rows keeps 24 fp32 accumulators in registers; each step over a unit
// loads 4 vectors of X and 6 broadcasts of W for 24 products.
//
// The work goes in passes over 256 tokens, whose packed X (512 KB for BF16 at K = 1024) stays in
// L2 while a 6-row weight panel sits in L1. A pass is split into items (pack one 16-token block;
// multiply 32 panels), which the threads take in order from one counter: a thread slowed by a
// shared core takes fewer instead of holding the others at the end, and the next pass is packed
// while this one is multiplied. The packed X of two passes lives in a buffer the calling thread
// keeps between calls (bounded by K, not by M), so no call maps and faults in fresh pages for it.
// An item's outputs are staged per 64-token tile and copied to Y a token's run of rows at a time.
//
// A row's sums do not depend on the other rows of the call: every output is one fp32 lane
// accumulated over K in order, whatever the tile, pass, item or thread it falls in.
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "elements.h"
#include "gemm.h"
#include "pool.h"
#include "vector_math.h"

#define TILE_BLOCKS 4  // 16-token blocks per tile
#define TILE_ROWS 6    // weight rows per tile: 6 of W, or 3 of W1 and the same 3 of W3
#define PASS_BLOCKS 16 // 16-token blocks per pass over the weight rows
#define GROUP_PANELS 32 // weight panels per product item: long runs of rows for the prefetcher
#define STAGE_ROW (GROUP_PANELS * TILE_ROWS) // elements per token in a product item's staging block

typedef struct {
    int f32;              // F32 operands, else BF16
    int wide;             // BF16 operands multiplied as fp32: X widened when packed, W rows per item
    const void *x;
    const void *w;        // W, or W1 of a gated product
    const void *w3;       // NULL, or W3 of a gated product
    const void *bias;     // NULL, or [N] added to the sums before rounding (never with W3)
    void *y;
    uint32_t *xp;         // X of two passes packed: [2][PASS_BLOCKS][units][16], rows past M zero
    int64_t m, k, n;
    int64_t units;        // 32-bit units per packed row: K/2 in BF16, K in F32 and wide BF16
    int64_t blocks;       // 16-token blocks of X
    int64_t step;         // weight rows per panel
    int64_t panels;       // panels of step rows (the last one may be short)
    int64_t groups;       // product items per pass: GROUP_PANELS panels each
    int64_t pass_items;   // items of a full pass: PASS_BLOCKS packing items, then the groups
    int64_t items;        // items of the whole call
    _Atomic int64_t next;     // the next item to take
    _Atomic int64_t *packed;  // per pass: packing items done (16-token blocks)
    _Atomic int64_t *computed; // per pass: product items done
    _Atomic int failed;       // a wide item could not allocate its weight buffer
} gemm_t;

/** Where 16-token block b of X is packed: [units][16], in the buffer half of its pass. */
static inline uint32_t *packed_block(const gemm_t *g, int64_t b) {
    return g->xp + ((b / PASS_BLOCKS) % 2 * PASS_BLOCKS + b % PASS_BLOCKS) * g->units * 16;
}

/** Units p .. p+15 of X row `row`: 32-bit units as they are, or 16 BF16 values widened to fp32. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) __m512i load_units(const gemm_t *g, int64_t row, int64_t p) {
    if (g->wide) {
        const __m256i h = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) g->x + row * g->k + p));
        return _mm512_castps_si512(widen16(h));
    }
    return _mm512_loadu_si512((const uint32_t *) g->x + row * g->units + p);
}

/** Unit p of X row `row`, as load_units. */
static inline uint32_t unit_at(const gemm_t *g, int64_t row, int64_t p) {
    return g->wide ? (uint32_t) ((const uint16_t *) g->x)[row * g->k + p] << 16
                   : ((const uint32_t *) g->x)[row * g->units + p];
}

/** X block b (16 tokens) into its packed slot, by 16×16 transposes of 32-bit units. */
__attribute__((target("avx512f")))
static void pack_block(const gemm_t *g, int64_t b) {
    const int64_t units = g->units;
    uint32_t *out = packed_block(g, b);
    const int64_t first = b * 16;
    const int rows = (int) (g->m - first < 16 ? g->m - first : 16);
    int64_t p = 0;
    for (; p + 16 <= units; p += 16) {
        __m512i r[16];
        for (int i = 0; i < 16; i++) {
            r[i] = i < rows ? load_units(g, first + i, p) : _mm512_setzero_si512();
        }
        // 16×16 transpose: 32-bit pairs, 64-bit pairs, then 128-bit lanes twice
        __m512i t[16];
        for (int i = 0; i < 16; i += 2) {
            t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
            t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
        }
        for (int i = 0; i < 16; i += 4) {
            r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
            r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
            r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
            r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
        }
        for (int i = 0; i < 4; i++) {
            t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
            t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
            t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
            t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
        }
        for (int i = 0; i < 4; i++) {
            r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
            r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
            r[i + 4] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0x88);
            r[i + 12] = _mm512_shuffle_i32x4(t[i + 4], t[i + 12], 0xdd);
        }
        // r[i] now holds unit p + i of the 16 tokens
        for (int i = 0; i < 16; i++) {
            _mm512_storeu_si512(out + (p + i) * 16, r[i]);
        }
    }
    for (; p < units; p++) {
        for (int lane = 0; lane < 16; lane++) {
            out[p * 16 + lane] = lane < rows ? unit_at(g, first + lane, p) : 0;
        }
    }
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
 * Token blocks b0 .. b0+U-1 against weight rows n0 .. n0+R-1 (and the same rows of W3 when gated),
 * read from w and w3 at row n0 - row0 (g->w and g->w3 with row0 = 0, or a wide item's buffer),
 * the outputs of the tile's token i to out_rows + i · STAGE_ROW elements; U, R, gated, f32 (F32
 * outputs) and fma (F32 or wide products) are constants at each call, so the accumulators stay in
 * registers.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static inline __attribute__((always_inline)) void tile(const gemm_t *g, const uint32_t *w, const uint32_t *w3,
                                                       int64_t row0, int64_t n0, int64_t b0, void *out_rows,
                                                       const int U, const int R, const int gated, const int f32,
                                                       const int fma) {
    const int V = gated ? 2 * R : R;
    const int64_t units = g->units;
    const uint32_t *rows[TILE_ROWS];
    for (int v = 0; v < R; v++) {
        rows[v] = w + (n0 - row0 + v) * units;
        if (gated) {
            rows[R + v] = w3 + (n0 - row0 + v) * units;
        }
    }
    __m512 acc[TILE_BLOCKS][TILE_ROWS];
    for (int u = 0; u < U; u++) {
        for (int v = 0; v < V; v++) {
            acc[u][v] = _mm512_setzero_ps();
        }
    }
    const uint32_t *xb = packed_block(g, b0); // the tile's blocks follow it: a pass holds whole tiles
    for (int64_t p = 0; p < units; p++) {
        __m512i xv[TILE_BLOCKS];
        for (int u = 0; u < U; u++) {
            xv[u] = _mm512_loadu_si512(xb + (u * units + p) * 16);
            // in a register: GCC otherwise folds the load into each of the V products that use it,
            // V loads instead of one, and a 4 × 6 tile's 30 loads per 24 FMAs bound it to 80 % of
            // the FMA rate on CPUs that load two 64-byte vectors per cycle
            __asm__("" : "+v"(xv[u]));
        }
        for (int v = 0; v < V; v++) {
            const __m512i unit = _mm512_set1_epi32((int) rows[v][p]);
            for (int u = 0; u < U; u++) {
                acc[u][v] = fma ? _mm512_fmadd_ps(_mm512_castsi512_ps(xv[u]), _mm512_castsi512_ps(unit), acc[u][v])
                                : _mm512_dpbf16_ps(acc[u][v], (__m512bh) xv[u], (__m512bh) unit);
            }
        }
    }
    // the epilogue in vectors (bias, gate, BF16 rounding), then each token's R outputs stored
    // one by one into the staging block: the outputs of a token lie across the tile's accumulators
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
        const int64_t at = i * STAGE_ROW;
        for (int v = 0; v < R; v++) {
            if (f32) {
                ((float *) out_rows)[at + v] = out.f[v][i];
            } else {
                ((uint16_t *) out_rows)[at + v] = out.h[v][i];
            }
        }
    }
}

#define TILE_CASE_U(U, R, gated, f32, fma) \
    case U: tile(g, w, w3, row0, n0, b0, out_rows, U, R, gated, f32, fma); break;
#define TILE_CASE_R(R, gated, f32, fma)                                                                           \
    case R:                                                                                                        \
        switch (u) { TILE_CASE_U(1, R, gated, f32, fma) TILE_CASE_U(2, R, gated, f32, fma)                        \
                     TILE_CASE_U(3, R, gated, f32, fma) TILE_CASE_U(4, R, gated, f32, fma) }                      \
        break;
#define ANY_TILE(f32, fma)                                                                                         \
    if (w3) {                                                                                                      \
        switch (r) { TILE_CASE_R(1, 1, f32, fma) TILE_CASE_R(2, 1, f32, fma) TILE_CASE_R(3, 1, f32, fma) }         \
    } else {                                                                                                       \
        switch (r) {                                                                                               \
            TILE_CASE_R(1, 0, f32, fma) TILE_CASE_R(2, 0, f32, fma) TILE_CASE_R(3, 0, f32, fma)                    \
            TILE_CASE_R(4, 0, f32, fma) TILE_CASE_R(5, 0, f32, fma) TILE_CASE_R(6, 0, f32, fma)                    \
        }                                                                                                          \
    }

/** The BF16 tile of u token blocks (1..4) and r weight rows (1..6, or 1..3 when gated): vdpbf16ps. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_bf16(const gemm_t *g, const uint32_t *w, const uint32_t *w3, int64_t row0, int64_t n0, int64_t b0,
                      void *out_rows, int u, int r) {
    ANY_TILE(0, 0)
}

/**
 * The F32 tile, as tile_bf16. Compiled with the BF16 target too, so that tile() inlines; with fma
 * constant the BF16 instructions are dead code and never emitted, so AVX-512 CPUs without
 * AVX512-BF16 run it.
 */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_f32(const gemm_t *g, const uint32_t *w, const uint32_t *w3, int64_t row0, int64_t n0, int64_t b0,
                     void *out_rows, int u, int r) {
    ANY_TILE(1, 1)
}

/** The wide tile: fp32 products of widened BF16 operands, BF16 outputs; runs as tile_f32 does. */
__attribute__((target("avx512f,avx512bw,avx512bf16")))
static void tile_wide(const gemm_t *g, const uint32_t *w, const uint32_t *w3, int64_t row0, int64_t n0, int64_t b0,
                      void *out_rows, int u, int r) {
    ANY_TILE(0, 1)
}

/** Waits until *counter reaches target (other threads finishing earlier items). */
static inline void await_count(_Atomic int64_t *counter, int64_t target) {
    while (atomic_load_explicit(counter, memory_order_acquire) < target) {
        _mm_pause();
    }
}

/** A buffer its thread keeps between calls, grown as needed and freed when the thread ends. */
typedef struct {
    void *data;
    size_t bytes;
} kept_t;

enum { PACKED_X, WIDE_W, KEPT_BUFFERS }; // the calling thread's packed X; a wide item's weight rows

static pthread_key_t kept_keys[KEPT_BUFFERS];
static pthread_once_t kept_once = PTHREAD_ONCE_INIT;
static _Thread_local kept_t kept[KEPT_BUFFERS];

static void make_kept_keys(void) {
    for (int i = 0; i < KEPT_BUFFERS; i++) {
        pthread_key_create(&kept_keys[i], free);
    }
}

/** This thread's buffer `which` of at least `bytes` (64-byte aligned), or NULL when it cannot be had. */
static void *kept_buffer(int which, size_t bytes) {
    kept_t *b = &kept[which];
    if (b->bytes < bytes) {
        pthread_once(&kept_once, make_kept_keys);
        free(b->data);
        b->data = aligned_alloc(64, (bytes + 63) / 64 * 64);
        b->bytes = b->data ? bytes : 0;
        pthread_setspecific(kept_keys[which], b->data);
    }
    return b->data;
}

/** BF16 rows [rows][k] widened to fp32 into out, element by element. */
__attribute__((target("avx512f")))
static void widen_rows(const uint16_t *in, int64_t rows, int64_t k, uint32_t *out) {
    const int64_t count = rows * k, vcount = count & ~(int64_t) 15;
    int64_t i = 0;
    for (; i < vcount; i += 16) {
        const __m256i h = _mm256_loadu_si256((const __m256i *) (in + i));
        _mm512_storeu_ps((float *) out + i, widen16(h));
    }
    for (; i < count; i++) {
        out[i] = (uint32_t) in[i] << 16;
    }
}

/**
 * Product item `group` of pass `pass`: its panels of weight rows against the pass's tiles of
 * tokens, tile by tile. A tile's outputs go to a staging block of the thread's, [64 tokens]
 * [the item's rows], and from there to Y one token's run of rows at a time: written straight
 * into Y, 6 outputs per token land in 64 rows of Y whose stride (N elements, often a multiple
 * of 4 KB) maps them all to one L1 set, and the stores went out to L2 (a tile's stores took as
 * long as its products at K = 128). A wide item first widens its weight rows (W1's, then W3's
 * when gated) into a buffer of its thread's; 0 when that buffer cannot be allocated.
 */
static int product_group(const gemm_t *g, int64_t pass, int64_t group) {
    static _Thread_local float stage[TILE_BLOCKS * 16 * STAGE_ROW]; // 48 KB: F32 rows; BF16 uses half
    const int64_t elem = g->f32 ? 4 : 2;
    const int64_t pass_begin = pass * PASS_BLOCKS;
    const int64_t pass_end = pass_begin + PASS_BLOCKS < g->blocks ? pass_begin + PASS_BLOCKS : g->blocks;
    const int64_t first = group * GROUP_PANELS;
    const int64_t panel_end = first + GROUP_PANELS < g->panels ? first + GROUP_PANELS : g->panels;
    const int64_t n_first = first * g->step;
    const int64_t n_end = panel_end * g->step < g->n ? panel_end * g->step : g->n;
    const uint32_t *w = g->w, *w3 = g->w3;
    int64_t row0 = 0;
    if (g->wide) {
        const int64_t rows = n_end - n_first;
        uint32_t *buf = kept_buffer(WIDE_W, (size_t) ((g->w3 ? 2 : 1) * rows * g->k * 4));
        if (!buf) {
            return 0;
        }
        widen_rows((const uint16_t *) g->w + n_first * g->k, rows, g->k, buf);
        if (g->w3) {
            widen_rows((const uint16_t *) g->w3 + n_first * g->k, rows, g->k, buf + rows * g->k);
        }
        w = buf;
        w3 = g->w3 ? buf + rows * g->k : NULL;
        row0 = n_first;
    }
    for (int64_t b0 = pass_begin; b0 < pass_end; b0 += TILE_BLOCKS) {
        const int u = (int) (pass_end - b0 < TILE_BLOCKS ? pass_end - b0 : TILE_BLOCKS);
        for (int64_t panel = first; panel < panel_end; panel++) {
            const int64_t n0 = panel * g->step;
            const int r = (int) (g->n - n0 < g->step ? g->n - n0 : g->step);
            char *out_rows = (char *) stage + (n0 - n_first) * elem;
            if (g->f32) {
                tile_f32(g, w, w3, row0, n0, b0, out_rows, u, r);
            } else if (g->wide) {
                tile_wide(g, w, w3, row0, n0, b0, out_rows, u, r);
            } else {
                tile_bf16(g, w, w3, row0, n0, b0, out_rows, u, r);
            }
        }
        for (int64_t i = 0; i < u * 16 && b0 * 16 + i < g->m; i++) {
            memcpy((char *) g->y + ((b0 * 16 + i) * g->n + n_first) * elem, (const char *) stage + i * STAGE_ROW * elem,
                   (size_t) ((n_end - n_first) * elem));
        }
    }
    return 1;
}

/**
 * Every thread takes the call's items in order from one counter, so a thread slowed down by the
 * machine (a shared core) takes fewer of them instead of holding the others at the end. A pass
 * is PASS_BLOCKS packing items (one 16-token block of X each) and then its product items; packed
 * passes alternate between two buffers, so a pass is packed while the one before is multiplied.
 * An item waits only for items before it: a product item for its pass's packing, a packing item
 * for the products of the pass that used its buffer before (two passes back).
 */
static void work_share(const void *ctx, int part, int parts) {
    (void) part;
    (void) parts;
    gemm_t *g = (gemm_t *) ctx;
    for (;;) {
        const int64_t item = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
        if (item >= g->items) {
            return;
        }
        const int64_t pass = item / g->pass_items;
        const int64_t local = item % g->pass_items;
        const int64_t pass_begin = pass * PASS_BLOCKS;
        const int64_t pass_blocks = g->blocks - pass_begin < PASS_BLOCKS ? g->blocks - pass_begin : PASS_BLOCKS;
        if (local < pass_blocks) {
            if (pass >= 2) {
                await_count(&g->computed[pass - 2], g->groups);
            }
            pack_block(g, pass_begin + local);
            atomic_fetch_add_explicit(&g->packed[pass], 1, memory_order_release);
        } else {
            await_count(&g->packed[pass], pass_blocks);
            if (!product_group(g, pass, local - pass_blocks)) {
                atomic_store_explicit(&g->failed, 1, memory_order_relaxed);
            }
            atomic_fetch_add_explicit(&g->computed[pass], 1, memory_order_release);
        }
    }
}

int gemm(int dtype, const void *x, int64_t m, int64_t k, const void *w, const void *w3, const void *bias, int64_t n,
         void *y) {
    const int f32 = dtype == MS_F32;
    if ((!f32 && k % 2 != 0) || (w3 && bias)) {
        return MS_CPU_EUNSUPPORTED;
    }
    const int wide = !f32 && !cpu_bf16_dot_products();
    const int64_t blocks = (m + 15) / 16;
    const int64_t units = f32 || wide ? k : k / 2;
    // the slots of two passes, or of every block when there are fewer (a multiple of 64 bytes)
    const int64_t slots = blocks < 2 * PASS_BLOCKS ? blocks : 2 * PASS_BLOCKS;
    uint32_t *xp = kept_buffer(PACKED_X, (size_t) (slots * 16 * units * 4));
    if (!xp) {
        return MS_CPU_ENOMEM;
    }
    const int64_t step = w3 ? TILE_ROWS / 2 : TILE_ROWS;
    const int64_t panels = (n + step - 1) / step;
    const int64_t groups = (panels + GROUP_PANELS - 1) / GROUP_PANELS;
    const int64_t passes = (blocks + PASS_BLOCKS - 1) / PASS_BLOCKS;
    // counted per pass: a later pass's items may finish before an earlier pass's last one
    _Atomic int64_t *counts = calloc((size_t) (2 * passes), sizeof *counts);
    if (!counts) {
        return MS_CPU_ENOMEM;
    }
    gemm_t g = {f32, wide, x, w, w3, bias, y, xp, m, k, n, units, blocks, step, panels, groups, PASS_BLOCKS + groups,
                0, 0, counts, counts + passes, 0};
    g.items = (passes - 1) * g.pass_items + (blocks - (passes - 1) * PASS_BLOCKS) + groups;
    pool_run(work_share, &g, 1);
    free(counts);
    return atomic_load(&g.failed) ? MS_CPU_ENOMEM : MS_CPU_OK;
}

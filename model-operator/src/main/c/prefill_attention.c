// Causal attention of many new tokens (a prompt, or a chunk after a cache) in BF16, flash-attention
// style: per query head and block of queries, the keys are visited block by block with an online
// softmax, so no [L, L] score matrix is ever stored. libtorch's CPU flash kernel does the same
// with small GEMM calls and reached about 100 GFLOP/s here in BF16 (no faster than in FP32); this
// one keeps its blocks in registers with AVX512-BF16 dot products, or on AVX-512 CPUs without
// them ("wide") with FMAs over operands widened to fp32 (a BF16 value is the upper half of its
// fp32 value, so widening is exact).
//
// Rounding follows libtorch's BF16 flash attention: q·k in fp32, softmax in fp32 (the row sums of
// the fp32 probabilities), the probabilities rounded to BF16 for the product with V (accumulated
// in fp32), the output divided by the row sum and rounded.
//
// Both products are outer products: K and V are first repacked per KV head so that one 64-byte
// vector holds a pair of head dimensions for 16 keys (for q·k) or a pair of keys for 16 head
// dimensions (for p·V); the other operand is a broadcast BF16 pair. Queries of one KV head share
// its repacked keys and values (grouped-query attention without copies). Wide, the repacked keys
// are fp32 [head dimension][16 keys] and the values fp32 rows, the queries of a block are widened
// once and the probabilities kept as fp32 of their BF16 rounding; each product is one FMA of a
// broadcast fp32 value.
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "elements.h"
#include "monostream_cpu.h"
#include "pool.h"
#include "vector_math.h"

#define BQ 16 // query rows per task
#define BK 64 // keys per block of the online softmax
#define TARGET __attribute__((target("avx512f,avx512bw,avx512bf16")))

typedef struct {
    const uint16_t *q;                 // [heads, length, d]
    const uint16_t *k_cache, *v_cache; // [kv_heads, capacity, d]
    int wide;                          // fp32 operands (CPUs without AVX512-BF16), else BF16 pairs
    void *kp, *vp;                     // repacked keys and values, kv_heads · padded · d elements each
                                       // (BF16, or fp32 when wide; layouts at repack_group, widen_group)
    int64_t kv_heads, group, d, capacity, past, length, padded;
    uint16_t *out;                     // [length, heads · d]
    float scale;
} prefill_job;

/**
 * Repacks the keys and values of one KV head's group of 16 keys: keys as [pair of dims][16 keys][2]
 * (a 16 × d/2 transpose of 32-bit pairs), values as [pair of keys][d][2] (two rows interleaved).
 * Keys at or past the total are zero.
 */
static void repack_group(const prefill_job *j, int64_t g, int64_t kg) {
    const int64_t d = j->d, total = j->past + j->length, groups = j->padded / 16;
    const uint16_t *keys = j->k_cache + g * j->capacity * d, *values = j->v_cache + g * j->capacity * d;
    const int64_t live = total - kg * 16 < 16 ? total - kg * 16 : 16;
    uint32_t *kp = (uint32_t *) ((uint16_t *) j->kp + (g * groups + kg) * 16 * d);
    if (live < 16) {
        memset(kp, 0, (size_t) (16 * d * 2));
    }
    for (int64_t s = 0; s < live; s++) {
        const uint16_t *row = keys + (kg * 16 + s) * d;
        for (int64_t pair = 0; pair < d / 2; pair++) {
            uint32_t both;
            memcpy(&both, row + 2 * pair, sizeof both);
            kp[pair * 16 + s] = both;
        }
    }
    for (int64_t kpair = kg * 8; kpair < kg * 8 + 8; kpair++) {
        uint16_t *vp = (uint16_t *) j->vp + (g * (j->padded / 2) + kpair) * d * 2;
        const int64_t a = 2 * kpair, b = a + 1;
        const uint16_t *ra = values + a * d, *rb = values + b * d;
        if (b < total) {
            for (int64_t c = 0; c < d; c++) {
                vp[2 * c] = ra[c];
                vp[2 * c + 1] = rb[c];
            }
        } else {
            for (int64_t c = 0; c < d; c++) {
                vp[2 * c] = a < total ? ra[c] : 0;
                vp[2 * c + 1] = 0;
            }
        }
    }
}

/** As repack_group, wide: keys as fp32 [dim][16 keys], values as fp32 rows; zero past the total. */
static void widen_group(const prefill_job *j, int64_t g, int64_t kg) {
    const int64_t d = j->d, total = j->past + j->length, groups = j->padded / 16;
    const uint16_t *keys = j->k_cache + g * j->capacity * d, *values = j->v_cache + g * j->capacity * d;
    const int64_t live = total - kg * 16 < 16 ? total - kg * 16 : 16;
    float *kw = (float *) j->kp + (g * groups + kg) * 16 * d;
    float *vw = (float *) j->vp + (g * j->padded + kg * 16) * d;
    for (int64_t s = 0; s < 16; s++) {
        const uint16_t *krow = keys + (kg * 16 + s) * d, *vrow = values + (kg * 16 + s) * d;
        for (int64_t c = 0; c < d; c++) {
            kw[c * 16 + s] = s < live ? bf16_to_f32(krow[c]) : 0.0f;
            vw[s * d + c] = s < live ? bf16_to_f32(vrow[c]) : 0.0f;
        }
    }
}

/** The groups of 16 keys of every KV head, shared out. */
static void repack_share(const void *ctx, int part, int parts) {
    const prefill_job *j = ctx;
    const int64_t groups = j->padded / 16;
    const int64_t g0 = j->kv_heads * groups * part / parts, g1 = j->kv_heads * groups * (part + 1) / parts;
    for (int64_t gi = g0; gi < g1; gi++) {
        if (j->wide) {
            widen_group(j, gi / groups, gi % groups);
        } else {
            repack_group(j, gi / groups, gi % groups);
        }
    }
}

// Both products below take their operands as 32-bit units of 64-byte vectors: a BF16 pair for the
// AVX512-BF16 dot products, one fp32 value when wide. A unit u of the head dimension is a pair of
// dimensions (d / 2 units) or one dimension (d units); of the keys, a pair of keys or one key.

/** acc + the products of broadcast unit `b` with the 16 lanes of v: vdpbf16ps, or an FMA when wide. */
TARGET static inline __attribute__((always_inline)) __m512 unit_madd(__m512 acc, __m512i b, __m512i v,
                                                                    const int wide) {
    return wide ? _mm512_fmadd_ps(_mm512_castsi512_ps(b), _mm512_castsi512_ps(v), acc)
                : _mm512_dpbf16_ps(acc, (__m512bh) b, (__m512bh) v);
}

/** Unit u of a row of 32-bit units (for a broadcast). */
static inline __attribute__((always_inline)) int32_t unit_at(const void *row, int64_t u) {
    int32_t unit;
    memcpy(&unit, (const char *) row + u * 4, sizeof unit);
    return unit;
}

/**
 * s[r][key] = scale · q_r · k_key for keys [k0, k0 + 64) of the block, rows r < rows (≤ 4 at a
 * time); q_rows are the block's queries (BF16, or fp32 when wide) and k_block its repacked keys.
 * Inlined with constant rows, key groups and wide, so the 16 sums stay in registers.
 */
TARGET static inline __attribute__((always_inline)) void scores_tile(const prefill_job *j, const void *q_rows,
                                                                     const int rows, const void *k_block,
                                                                     const int key_groups, float s[][BK],
                                                                     const int wide) {
    const int64_t d = j->d, esz = wide ? 4 : 2, units = wide ? d : d / 2;
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++) {
        for (int kg = 0; kg < 4; kg++) {
            acc[r][kg] = _mm512_setzero_ps();
        }
    }
    for (int64_t u = 0; u < units; u++) {
        __m512i kv[4];
        for (int kg = 0; kg < key_groups; kg++) {
            kv[kg] = _mm512_loadu_si512((const char *) k_block + kg * 16 * d * esz + u * 64);
            __asm__("" : "+v"(kv[kg])); // in a register: not loaded again for every row (as in gemm.c's tile)
        }
        for (int r = 0; r < rows; r++) {
            const __m512i qb = _mm512_set1_epi32(unit_at((const char *) q_rows + r * d * esz, u));
            for (int kg = 0; kg < key_groups; kg++) {
                acc[r][kg] = unit_madd(acc[r][kg], qb, kv[kg], wide);
            }
        }
    }
    const __m512 scale = _mm512_set1_ps(j->scale);
    for (int r = 0; r < rows; r++) {
        for (int kg = 0; kg < key_groups; kg++) {
            _mm512_storeu_ps(&s[r][kg * 16], _mm512_mul_ps(acc[r][kg], scale));
        }
    }
}

/** The tile with full 4 × 4 blocks made constant, else the general one. */
TARGET static inline __attribute__((always_inline)) void scores4(const prefill_job *j, const void *q_rows, int rows,
                                                                 const void *k_block, int key_groups, float s[][BK],
                                                                 const int wide) {
    const int64_t row_bytes = j->d * (wide ? 4 : 2);
    if (rows == 4 && key_groups == 4) {
        scores_tile(j, q_rows, 4, k_block, 4, s, wide);
    } else {
        for (int r = 0; r < rows; r++) {
            const void *q = (const char *) q_rows + r * row_bytes;
            switch (key_groups) {
                case 4: scores_tile(j, q, 1, k_block, 4, &s[r], wide); break;
                case 3: scores_tile(j, q, 1, k_block, 3, &s[r], wide); break;
                case 2: scores_tile(j, q, 1, k_block, 2, &s[r], wide); break;
                default: scores_tile(j, q, 1, k_block, 1, &s[r], wide); break;
            }
        }
    }
}

/**
 * o[r][:] += p[r][keys of the block] · V for rows r < rows (≤ 2) over 16·cn head dimensions from
 * column group c0: p as rows of BK probabilities (BF16 pairs, or fp32 when wide), V from the
 * block's first key, `units` key units. Inlined with constant rows, cn and wide, so the sums stay in
 * registers.
 */
TARGET static inline __attribute__((always_inline)) void accumulate_tile(const prefill_job *j, const void *p_rows,
                                                                         const int rows, const void *v_block,
                                                                         int units, float *o_rows, int64_t c0,
                                                                         const int cn, const int wide) {
    const int64_t d = j->d, esz = wide ? 4 : 2;
    __m512 acc[2][8];
    for (int r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cn; c++) {
            acc[r][c] = _mm512_loadu_ps(o_rows + r * d + (c0 + c) * 16);
        }
    }
    for (int u = 0; u < units; u++) {
        // a unit's d values of V (one key, or a pair of keys interleaved) take 4·d bytes either way
        const char *v = (const char *) v_block + u * d * 4 + c0 * 64;
        __m512i vv[8];
        for (int64_t c = 0; c < cn; c++) {
            vv[c] = _mm512_loadu_si512(v + c * 64);
            __asm__("" : "+v"(vv[c])); // in a register: not loaded again for the second row
        }
        for (int r = 0; r < rows; r++) {
            const __m512i pb = _mm512_set1_epi32(unit_at((const char *) p_rows + r * BK * esz, u));
            for (int64_t c = 0; c < cn; c++) {
                acc[r][c] = unit_madd(acc[r][c], pb, vv[c], wide);
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cn; c++) {
            _mm512_storeu_ps(o_rows + r * d + (c0 + c) * 16, acc[r][c]);
        }
    }
}

/** accumulate_tile over every column group: 8 at a time (128 head dimensions), then one by one. */
TARGET static inline __attribute__((always_inline)) void accumulate2(const prefill_job *j, const void *p_rows, int rows,
                                                                     const void *v_block, int units, float *o_rows,
                                                                     const int wide) {
    const int64_t columns = j->d / 16;
    int64_t c0 = 0;
    for (; c0 + 8 <= columns; c0 += 8) {
        if (rows == 2) {
            accumulate_tile(j, p_rows, 2, v_block, units, o_rows, c0, 8, wide);
        } else {
            accumulate_tile(j, p_rows, 1, v_block, units, o_rows, c0, 8, wide);
        }
    }
    for (; c0 < columns; c0++) {
        for (int r = 0; r < rows; r++) {
            accumulate_tile(j, (const char *) p_rows + r * BK * (wide ? 4 : 2), 1, v_block, units,
                            o_rows + r * j->d, c0, 1, wide);
        }
    }
}

/**
 * One query head and block of query rows [t0, t0 + rows), with AVX512-BF16 dot products or wide;
 * wide is a constant at each call, so the BF16 instructions are never emitted for it.
 */
TARGET static inline __attribute__((always_inline)) void attend_block(const prefill_job *j, int64_t head, int64_t t0,
                                                                      int rows, const int wide) {
    const int64_t d = j->d, g = head / j->group, groups16 = j->padded / 16;
    const uint16_t *q = j->q + (head * j->length + t0) * d;
    const int64_t key_end = j->past + t0 + rows; // keys visible to the block's last row
    float o[BQ * MS_CPU_MAX_HEAD_DIM];
    float qf[wide ? BQ * MS_CPU_MAX_HEAD_DIM : 1]; // wide: the block's queries as fp32
    float max[BQ], sum[BQ];
    float s[BQ][BK];
    // the probabilities [BQ][BK], rounded to BF16: BF16 values, or when wide fp32 ones
    _Alignas(64) char p[BQ * BK * sizeof(float)];
    const int64_t esz = wide ? 4 : 2; // bytes per element of the repacked operands and of p
    const char *q_rows = wide ? (const char *) qf : (const char *) q;
    memset(o, 0, sizeof(float) * rows * d);
    if (wide) {
        for (int64_t i = 0; i < rows * d; i++) {
            qf[i] = bf16_to_f32(q[i]);
        }
    }
    for (int r = 0; r < rows; r++) {
        max[r] = -INFINITY;
        sum[r] = 0;
    }
    for (int64_t k0 = 0; k0 < key_end; k0 += BK) {
        const int64_t valid = key_end - k0 < BK ? key_end - k0 : BK;
        const int key_groups = (int) ((valid + 15) / 16);
        const char *k_block = (const char *) j->kp + (g * groups16 + k0 / 16) * 16 * d * esz;
        for (int r = 0; r < rows; r += 4) {
            scores4(j, q_rows + r * d * esz, rows - r < 4 ? rows - r : 4, k_block, key_groups, &s[r], wide);
        }
        int pairs = 0;
        for (int r = 0; r < rows; r++) {
            // row r (position past + t0 + r) sees keys up to its own position
            const int64_t visible = j->past + t0 + r + 1 - k0;
            const int64_t seen = visible < valid ? visible : valid;
            const int kgs = (int) ((seen + 15) / 16);
            __m512 lane_max = _mm512_set1_ps(-INFINITY);
            for (int kg = 0; kg < kgs; kg++) {
                const int64_t left = seen - kg * 16;
                const __mmask16 live = left >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << left) - 1);
                lane_max = _mm512_mask_max_ps(lane_max, live, lane_max, _mm512_loadu_ps(&s[r][kg * 16]));
            }
            const float block_max = _mm512_reduce_max_ps(lane_max);
            const float new_max = block_max > max[r] ? block_max : max[r];
            const float rescale = max[r] == -INFINITY ? 0.0f : expf(max[r] - new_max);
            max[r] = new_max;
            __m512 total = _mm512_setzero_ps();
            for (int kg = 0; kg < kgs; kg++) {
                const int64_t left = seen - kg * 16;
                const __mmask16 live = left >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << left) - 1);
                const __m512 e = _mm512_maskz_mov_ps(live,
                        exp16(_mm512_sub_ps(_mm512_loadu_ps(&s[r][kg * 16]), _mm512_set1_ps(new_max))));
                total = _mm512_add_ps(total, e);
                char *at = p + (r * BK + kg * 16) * esz;
                if (wide) {
                    _mm512_storeu_ps((float *) at, round16(e));
                } else {
                    _mm256_storeu_si256((__m256i *) at, (__m256i) _mm512_cvtneps_pbh(e));
                }
            }
            memset(p + (r * BK + kgs * 16) * esz, 0, (size_t) ((BK - kgs * 16) * esz));
            sum[r] = sum[r] * rescale + _mm512_reduce_add_ps(total);
            if (rescale != 1.0f) {
                for (int64_t c = 0; c < d; c++) {
                    o[r * d + c] *= rescale;
                }
            }
            const int row_pairs = (int) ((seen + 1) / 2);
            pairs = row_pairs > pairs ? row_pairs : pairs;
        }
        const char *v_block = (const char *) j->vp + (g * j->padded + k0) * d * esz;
        for (int r = 0; r < rows; r += 2) {
            accumulate2(j, p + r * BK * esz, rows - r < 2 ? rows - r : 2, v_block, wide ? 2 * pairs : pairs, o + r * d,
                        wide);
        }
    }
    const int64_t width = j->kv_heads * j->group * d;
    for (int r = 0; r < rows; r++) {
        uint16_t *y = j->out + (t0 + r) * width + head * d;
        for (int64_t c = 0; c < d; c++) {
            y[c] = f32_to_bf16(o[r * d + c] / sum[r]);
        }
    }
}

TARGET static void attend_block_dp(const prefill_job *j, int64_t head, int64_t t0, int rows) {
    attend_block(j, head, t0, rows, 0);
}

TARGET static void attend_block_wide(const prefill_job *j, int64_t head, int64_t t0, int rows) {
    attend_block(j, head, t0, rows, 1);
}

/** Tasks (head, block of queries) dealt out round-robin: later blocks see more keys. */
static void attend_share(const void *ctx, int part, int parts) {
    const prefill_job *j = ctx;
    const int64_t blocks = (j->length + BQ - 1) / BQ, tasks = j->kv_heads * j->group * blocks;
    for (int64_t task = part; task < tasks; task += parts) {
        const int64_t head = task % (j->kv_heads * j->group), block = task / (j->kv_heads * j->group);
        const int64_t t0 = block * BQ;
        const int rows = (int) (j->length - t0 < BQ ? j->length - t0 : BQ);
        if (j->wide) {
            attend_block_wide(j, head, t0, rows);
        } else {
            attend_block_dp(j, head, t0, rows);
        }
    }
}

int ms_cpu_attention_prefill(int dtype, const void *q, int64_t length, int64_t kv_heads, int64_t group, int64_t d,
                             const void *k_cache, const void *v_cache, int64_t capacity, int64_t past, void *out) {
    if (dtype != MS_BF16 || !q || !k_cache || !v_cache || !out || length < 1 || kv_heads < 1 || group < 1
            || d < 16 || d % 16 != 0 || d > MS_CPU_MAX_HEAD_DIM || past < 0 || past + length > capacity) {
        return MS_CPU_EINVAL;
    }
    const int wide = !cpu_bf16_dot_products();
    if (wide && !cpu_has_avx512f()) {
        return MS_CPU_EUNSUPPORTED;
    }
    const int64_t padded = (past + length + BK - 1) / BK * BK;
    const size_t half = (size_t) (kv_heads * padded * d) * (wide ? sizeof(float) : sizeof(uint16_t));
    char *packed = aligned_alloc(64, 2 * half);
    if (!packed) {
        return MS_CPU_ENOMEM;
    }
    prefill_job job = {q, k_cache, v_cache, wide, packed, packed + half, kv_heads, group, d, capacity, past, length,
                       padded, out, 1.0f / sqrtf((float) d)};
    pool_run(repack_share, &job, 1);
    pool_run(attend_share, &job, 1);
    free(packed);
    return MS_CPU_OK;
}

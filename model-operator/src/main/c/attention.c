// Causal attention of one new token against its sequence's KV cache (spec §6), for decode: rotary
// embedding of the token's query and key heads, the key and value written into the cache, then
// per query head softmax(q·Kᵀ/√d)·V over every cached position. One call replaces the dozen
// libtorch ops (splits, rotary, cache writes, SDPA, merges) that cost more than the math here.
//
// Rounding follows the model's libtorch ops: the rotary products and their sum are each rounded
// to the precision; scores, softmax and the weighted sum of values are fp32; the output is rounded.
#include <math.h>

#include "elements.h"
#include "monostream_cpu.h"
#include "pool.h"



typedef struct {
    int dtype;
    const void *qkv;
    int64_t kv_heads, group, d;
    const void *cos, *sin;
    void *k_cache, *v_cache;
    int64_t capacity, length; // length: cached positions including the new token
    void *out;
} attention_job;

/**
 * dst[i] = x·cos + rotate_half(x)·sin for the head x (d elements) and the tables at cos and sin,
 * with libtorch's roundings; rotate_half(x) = [-x[d/2:], x[:d/2]]. Always inlined with dtype a
 * constant, so that both halves vectorise.
 */
static inline __attribute__((always_inline)) void rotate(const int dtype, const void *restrict x,
                                                         const void *restrict cos, const void *restrict sin,
                                                         int64_t d, float *restrict dst) {
    const int64_t half = d / 2;
    for (int64_t i = 0; i < half; i++) {
        float a = round_to(load_elem(x, i, dtype) * load_elem(cos, i, dtype), dtype);
        float b = round_to(-load_elem(x, i + half, dtype) * load_elem(sin, i, dtype), dtype);
        dst[i] = round_to(a + b, dtype);
    }
    for (int64_t i = half; i < d; i++) {
        float a = round_to(load_elem(x, i, dtype) * load_elem(cos, i, dtype), dtype);
        float b = round_to(load_elem(x, i - half, dtype) * load_elem(sin, i, dtype), dtype);
        dst[i] = round_to(a + b, dtype);
    }
}

/** Element offset `at` of an array of dtype, as a pointer. */
static inline const void *at(const void *base, int64_t i, int dtype) {
    return (const char *) base + i * (dtype == MS_BF16 ? 2 : 4);
}

/** q·K row t of KV head base, fp32; split out so the compiler vectorises it per dtype. */
static inline __attribute__((always_inline)) float dot_row(const float *q, const void *cache, int64_t at, int64_t d,
                                                           int dtype) {
    float dot = 0;
    if (dtype == MS_BF16) {
        const uint16_t *row = (const uint16_t *) cache + at;
        for (int64_t i = 0; i < d; i++) {
            dot += q[i] * bf16_to_f32(row[i]);
        }
    } else {
        const float *row = (const float *) cache + at;
        for (int64_t i = 0; i < d; i++) {
            dot += q[i] * row[i];
        }
    }
    return dot;
}

/** acc = acc·rescale + p·V row. */
static inline __attribute__((always_inline)) void add_row(float *acc, float rescale, float p, const void *cache,
                                                          int64_t at, int64_t d, int dtype) {
    if (dtype == MS_BF16) {
        const uint16_t *row = (const uint16_t *) cache + at;
        for (int64_t i = 0; i < d; i++) {
            acc[i] = acc[i] * rescale + p * bf16_to_f32(row[i]);
        }
    } else {
        const float *row = (const float *) cache + at;
        for (int64_t i = 0; i < d; i++) {
            acc[i] = acc[i] * rescale + p * row[i];
        }
    }
}

/** The query heads of one share; softmax in one pass (running maximum, sums rescaled when it grows). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void heads_share(const void *ctx, int part, int parts) {
    const attention_job *j = ctx;
    const int64_t heads = j->kv_heads * j->group, d = j->d, slots = j->group + 2;
    const int64_t h0 = heads * part / parts, h1 = heads * (part + 1) / parts;
    const float scale = 1.0f / sqrtf((float) d);
    float q[MS_CPU_MAX_HEAD_DIM], acc[MS_CPU_MAX_HEAD_DIM];
    for (int64_t h = h0; h < h1; h++) {
        const int64_t g = h / j->group, s = h % j->group;
        if (j->dtype == MS_BF16) {
            rotate(MS_BF16, at(j->qkv, (g * slots + s) * d, MS_BF16), j->cos, j->sin, d, q);
        } else {
            rotate(MS_F32, at(j->qkv, (g * slots + s) * d, MS_F32), j->cos, j->sin, d, q);
        }
        const int64_t base = g * j->capacity * d;
        float max = -INFINITY, total = 0;
        for (int64_t i = 0; i < d; i++) {
            acc[i] = 0;
        }
        for (int64_t t = 0; t < j->length; t++) {
            const float score = dot_row(q, j->k_cache, base + t * d, d, j->dtype) * scale;
            float rescale = 1;
            if (score > max) {
                rescale = expf(max - score); // 0 on the first row
                total *= rescale;
                max = score;
            }
            const float p = expf(score - max);
            total += p;
            add_row(acc, rescale, p, j->v_cache, base + t * d, d, j->dtype);
        }
        for (int64_t i = 0; i < d; i++) {
            store_elem(j->out, h * d + i, acc[i] / total, j->dtype);
        }
    }
}

/** The new key (rotated) and value of token t (qkv row t) into cache row past + t of every KV head. */
static inline __attribute__((always_inline)) void write_kv(const int dtype, const void *qkv, int64_t t,
                                                           int64_t kv_heads, int64_t group, int64_t d,
                                                           const void *cos, const void *sin, void *k_cache,
                                                           void *v_cache, int64_t capacity, int64_t past) {
    float k[MS_CPU_MAX_HEAD_DIM];
    const int64_t row = t * kv_heads * (group + 2) * d;
    for (int64_t g = 0; g < kv_heads; g++) {
        const int64_t to = (g * capacity + past + t) * d, src = row + (g * (group + 2) + group) * d;
        rotate(dtype, at(qkv, src, dtype), at(cos, t * d, dtype), at(sin, t * d, dtype), d, k);
        for (int64_t i = 0; i < d; i++) {
            store_elem(k_cache, to + i, k[i], dtype);
        }
        memcpy((char *) v_cache + to * (dtype == MS_BF16 ? 2 : 4), at(qkv, src + d, dtype),
               (size_t) d * (dtype == MS_BF16 ? 2 : 4));
    }
}

int ms_cpu_attention_decode(int dtype, const void *qkv, int64_t kv_heads, int64_t group, int64_t d, const void *cos,
                            const void *sin, void *k_cache, void *v_cache, int64_t capacity, int64_t past, void *out) {
    if (!valid_dtype(dtype) || !qkv || !cos || !sin || !k_cache || !v_cache || !out || kv_heads < 1 || group < 1
            || d < 2 || d % 2 != 0 || d > MS_CPU_MAX_HEAD_DIM || past < 0 || past >= capacity) {
        return MS_CPU_EINVAL;
    }
    attention_job job = {dtype, qkv, kv_heads, group, d, cos, sin, k_cache, v_cache, capacity, past + 1, out};
    // the new key and value go into the cache first: every query head of a group reads them
    if (dtype == MS_BF16) {
        write_kv(MS_BF16, qkv, 0, kv_heads, group, d, cos, sin, k_cache, v_cache, capacity, past);
    } else {
        write_kv(MS_F32, qkv, 0, kv_heads, group, d, cos, sin, k_cache, v_cache, capacity, past);
    }
    pool_run(heads_share, &job, (past + 1) * kv_heads * group * d >= (1 << 15));
    return MS_CPU_OK;
}

typedef struct {
    int dtype;
    const void *qkv;
    int64_t length, kv_heads, group, d;
    const void *cos, *sin;
    void *k_cache, *v_cache;
    int64_t capacity, past;
    void *q_out;
} inputs_job;

/** Tokens t0 .. t1 - 1: keys and values into the cache, rotated queries into q_out [heads, length, d]. */
static inline __attribute__((always_inline)) void inputs_rows(const inputs_job *j, int64_t t0, int64_t t1,
                                                              const int dtype) {
    const int64_t d = j->d;
    float q[MS_CPU_MAX_HEAD_DIM];
    for (int64_t t = t0; t < t1; t++) {
        write_kv(dtype, j->qkv, t, j->kv_heads, j->group, d, j->cos, j->sin, j->k_cache, j->v_cache, j->capacity,
                 j->past);
        const int64_t row = t * j->kv_heads * (j->group + 2) * d;
        for (int64_t g = 0; g < j->kv_heads; g++) {
            for (int64_t s = 0; s < j->group; s++) {
                const int64_t head = g * j->group + s;
                rotate(dtype, at(j->qkv, row + (g * (j->group + 2) + s) * d, dtype), at(j->cos, t * d, dtype),
                       at(j->sin, t * d, dtype), d, q);
                for (int64_t i = 0; i < d; i++) {
                    store_elem(j->q_out, (head * j->length + t) * d + i, q[i], dtype);
                }
            }
        }
    }
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void inputs_share(const void *ctx, int part, int parts) {
    const inputs_job *j = ctx;
    const int64_t t0 = j->length * part / parts, t1 = j->length * (part + 1) / parts;
    if (j->dtype == MS_BF16) {
        inputs_rows(j, t0, t1, MS_BF16);
    } else {
        inputs_rows(j, t0, t1, MS_F32);
    }
}

int ms_cpu_attention_inputs(int dtype, const void *qkv, int64_t length, int64_t kv_heads, int64_t group, int64_t d,
                            const void *cos, const void *sin, void *k_cache, void *v_cache, int64_t capacity,
                            int64_t past, void *q_out) {
    if (!valid_dtype(dtype) || !qkv || !cos || !sin || !k_cache || !v_cache || !q_out || length < 1 || kv_heads < 1
            || group < 1 || d < 2 || d % 2 != 0 || d > MS_CPU_MAX_HEAD_DIM || past < 0 || past + length > capacity) {
        return MS_CPU_EINVAL;
    }
    inputs_job job = {dtype, qkv, length, kv_heads, group, d, cos, sin, k_cache, v_cache, capacity, past, q_out};
    pool_run(inputs_share, &job, length * kv_heads * (group + 2) * d >= (1 << 15));
    return MS_CPU_OK;
}

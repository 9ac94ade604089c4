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
 * dst[i] = x·cos + rotate_half(x)·sin for the head at src (d elements), with libtorch's roundings;
 * rotate_half(x) = [-x[d/2:], x[:d/2]].
 */
static void rotate(const attention_job *j, const void *src, int64_t src_at, float *dst) {
    const int64_t d = j->d, half = d / 2;
    for (int64_t i = 0; i < d; i++) {
        float x = load_elem(src, src_at + i, j->dtype);
        float other = i < half ? -load_elem(src, src_at + i + half, j->dtype) : load_elem(src, src_at + i - half, j->dtype);
        float a = round_to(x * load_elem(j->cos, i, j->dtype), j->dtype);
        float b = round_to(other * load_elem(j->sin, i, j->dtype), j->dtype);
        dst[i] = round_to(a + b, j->dtype);
    }
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
        rotate(j, j->qkv, (g * slots + s) * d, q);
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

int ms_cpu_attention_decode(int dtype, const void *qkv, int64_t kv_heads, int64_t group, int64_t d, const void *cos,
                            const void *sin, void *k_cache, void *v_cache, int64_t capacity, int64_t past, void *out) {
    if (!valid_dtype(dtype) || !qkv || !cos || !sin || !k_cache || !v_cache || !out || kv_heads < 1 || group < 1
            || d < 2 || d % 2 != 0 || d > MS_CPU_MAX_HEAD_DIM || past < 0 || past >= capacity) {
        return MS_CPU_EINVAL;
    }
    attention_job job = {dtype, qkv, kv_heads, group, d, cos, sin, k_cache, v_cache, capacity, past + 1, out};
    // the new key (rotated) and value go into the cache first: every query head of a group reads them
    float k[MS_CPU_MAX_HEAD_DIM];
    for (int64_t g = 0; g < kv_heads; g++) {
        const int64_t at = (g * capacity + past) * d;
        rotate(&job, qkv, (g * (group + 2) + group) * d, k);
        for (int64_t i = 0; i < d; i++) {
            store_elem(k_cache, at + i, k[i], dtype);
            store_elem(v_cache, at + i, load_elem(qkv, (g * (group + 2) + group + 1) * d + i, dtype), dtype);
        }
    }
    pool_run(heads_share, &job, (past + 1) * kv_heads * group * d >= (1 << 15));
    return MS_CPU_OK;
}

// Causal attention of one new token against its sequence's KV cache (spec §6), for decode: rotary
// embedding of the token's query and key heads, the key and value written into the cache, then
// per query head softmax(q·Kᵀ/√d)·V over every cached position. One call replaces the dozen
// libtorch ops (splits, rotary, cache writes, SDPA, merges) that cost more than the math here,
// and a decode step hands it the new tokens of all its sequences at once, so the threads share
// every (sequence, head) pair of the step in one wake-up.
//
// On AVX-512 CPUs each head takes three vector passes: the scores q·K (one fp32 vector of 16 head
// dimensions per sum, reduced once per key), their exponentials against the maximum, and the
// probability-weighted sum of the values. Elsewhere a portable loop makes one pass with a running
// maximum. Either way a head's result depends only on its own sequence, never on the batch.
//
// Rounding follows the model's libtorch ops: the rotary products and their sum are each rounded
// to the precision; scores, softmax and the weighted sum of values are fp32; the output is rounded.
#include <math.h>
#include <stdlib.h>

#include "attention.h"
#include "cpu_features.h"
#include "elements.h"
#include "monostream_cpu.h"
#include "pool.h"
#include "vector_math.h"

typedef struct {
    int dtype;
    int64_t kv_heads, group, d;
    const decode_token *tokens;
    int64_t count;
    int64_t longest; // cached rows of the longest sequence, new token included
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

/** The rotated query of head h of the token, fp32 (values of dtype). */
static inline __attribute__((always_inline)) void query(const attention_job *j, const decode_token *tk, int64_t h,
                                                        float *q, const int dtype) {
    const int64_t g = h / j->group, s = h % j->group;
    rotate(dtype, at(tk->qkv, (g * (j->group + 2) + s) * j->d, dtype), tk->cos, tk->sin, j->d, q);
}

/** Writes head h's output acc / total, rounded to dtype. */
static inline __attribute__((always_inline)) void emit(const attention_job *j, const decode_token *tk, int64_t h,
                                                       const float *acc, float total, const int dtype) {
    for (int64_t i = 0; i < j->d; i++) {
        store_elem(tk->out, h * j->d + i, acc[i] / total, dtype);
    }
}

// ------------------------------------------------------------------ portable loop

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

/** One head in one pass: softmax with a running maximum, the sums rescaled when it grows. */
static inline __attribute__((always_inline)) void head_portable(const attention_job *j, const decode_token *tk,
                                                                int64_t h, const int dtype) {
    const int64_t d = j->d, base = h / j->group * tk->capacity * d, length = tk->past + 1;
    const float scale = 1.0f / sqrtf((float) d);
    float q[MS_CPU_MAX_HEAD_DIM], acc[MS_CPU_MAX_HEAD_DIM];
    query(j, tk, h, q, dtype);
    float max = -INFINITY, total = 0;
    for (int64_t i = 0; i < d; i++) {
        acc[i] = 0;
    }
    for (int64_t t = 0; t < length; t++) {
        const float score = dot_row(q, tk->k_cache, base + t * d, d, dtype) * scale;
        float rescale = 1;
        if (score > max) {
            rescale = expf(max - score); // 0 on the first row
            total *= rescale;
            max = score;
        }
        const float p = expf(score - max);
        total += p;
        add_row(acc, rescale, p, tk->v_cache, base + t * d, d, dtype);
    }
    emit(j, tk, h, acc, total, dtype);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
static void heads_portable(const attention_job *j, int64_t u0, int64_t u1) {
    const int64_t heads = j->kv_heads * j->group;
    for (int64_t u = u0; u < u1; u++) {
        if (j->dtype == MS_BF16) {
            head_portable(j, &j->tokens[u / heads], u % heads, MS_BF16);
        } else {
            head_portable(j, &j->tokens[u / heads], u % heads, MS_F32);
        }
    }
}

// ------------------------------------------------------------------ AVX-512

#define VECTOR_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define MAX_REGISTER_CHUNKS 8 // head vectors (d ≤ 128) that head_vector keeps in registers

/** Elements i .. i + 15 of an array of dtype (lanes outside `lanes` read nothing and are 0), as fp32. */
VECTOR_TARGET static inline __attribute__((always_inline)) __m512 load16(const void *base, int64_t i, __mmask16 lanes,
                                                                         const int dtype) {
    if (dtype == MS_BF16) {
        const __m256i h = _mm256_maskz_loadu_epi16(lanes, (const uint16_t *) base + i);
        return widen16(h);
    }
    return _mm512_maskz_loadu_ps(lanes, (const float *) base + i);
}

/**
 * One head in three passes over its cached rows: s[t] = q·K[t]/√d, then p[t] = e^(s[t] - max)
 * with their total, then Σ p[t]·V[t] / total, each pass walking the rows in memory order. Head
 * dimensions go 16 to a vector, the last one masked when d is not a multiple of 16. C is the
 * number of vectors, a constant up to MAX_REGISTER_CHUNKS (the query and the weighted sum then
 * stay in registers: 8 of each at d = 128), or 0 for any count, the vectors then kept in memory.
 */
VECTOR_TARGET static inline __attribute__((always_inline)) void head_vector(const attention_job *j,
                                                                            const decode_token *tk, int64_t h,
                                                                            float *restrict s, const int dtype,
                                                                            const int C) {
    const int64_t d = j->d, base = h / j->group * tk->capacity * d, length = tk->past + 1;
    const int64_t chunks = C ? C : (d + 15) / 16;
    const __mmask16 last = d % 16 ? (__mmask16) ((1u << (d % 16)) - 1) : (__mmask16) 0xffff;
    const float scale = 1.0f / sqrtf((float) d);
    float q[MS_CPU_MAX_HEAD_DIM + 16] __attribute__((aligned(64)));
    query(j, tk, h, q, dtype);
    const void *keys = at(tk->k_cache, base, dtype), *values = at(tk->v_cache, base, dtype);
    __m512 qv[MAX_REGISTER_CHUNKS];
    for (int c = 0; c < C; c++) {
        qv[c] = _mm512_maskz_load_ps(c + 1 < C ? (__mmask16) 0xffff : last, q + c * 16);
    }

    float max = -INFINITY;
    for (int64_t t = 0; t < length; t++) {
        __m512 a[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        for (int64_t c = 0; c < chunks; c++) {
            const __mmask16 lanes = c + 1 < chunks ? (__mmask16) 0xffff : last;
            const __m512 qc = C ? qv[c] : _mm512_maskz_load_ps(lanes, q + c * 16);
            a[c & 1] = _mm512_fmadd_ps(qc, load16(keys, t * d + c * 16, lanes, dtype), a[c & 1]);
        }
        const float score = _mm512_reduce_add_ps(_mm512_add_ps(a[0], a[1])) * scale;
        s[t] = score;
        max = score > max ? score : max;
    }

    __m512 sum = _mm512_setzero_ps();
    const __m512 top = _mm512_set1_ps(max);
    for (int64_t t = 0; t < length; t += 16) {
        const __mmask16 lanes = length - t >= 16 ? (__mmask16) 0xffff : (__mmask16) ((1u << (length - t)) - 1);
        const __m512 p = _mm512_maskz_mov_ps(lanes, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(lanes, s + t), top)));
        _mm512_mask_storeu_ps(s + t, lanes, p);
        sum = _mm512_add_ps(sum, p);
    }
    const float total = _mm512_reduce_add_ps(sum);

    float acc[MS_CPU_MAX_HEAD_DIM + 16] __attribute__((aligned(64)));
    __m512 av[MAX_REGISTER_CHUNKS];
    for (int c = 0; c < C; c++) {
        av[c] = _mm512_setzero_ps();
    }
    for (int64_t c = 0; c < (C ? 0 : chunks); c++) {
        _mm512_store_ps(acc + c * 16, _mm512_setzero_ps());
    }
    for (int64_t t = 0; t < length; t++) {
        const __m512 p = _mm512_set1_ps(s[t]);
        for (int64_t c = 0; c < chunks; c++) {
            const __m512 v = load16(values, t * d + c * 16, c + 1 < chunks ? (__mmask16) 0xffff : last, dtype);
            if (C) {
                av[c] = _mm512_fmadd_ps(p, v, av[c]);
            } else {
                _mm512_store_ps(acc + c * 16, _mm512_fmadd_ps(p, v, _mm512_load_ps(acc + c * 16)));
            }
        }
    }
    for (int c = 0; c < C; c++) {
        _mm512_store_ps(acc + c * 16, av[c]);
    }
    emit(j, tk, h, acc, total, dtype);
}

/** head_vector with the vector count a constant where it fits in registers. */
VECTOR_TARGET static inline __attribute__((always_inline)) void head_vector_of(const attention_job *j,
                                                                               const decode_token *tk, int64_t h,
                                                                               float *restrict s, const int dtype) {
    switch ((j->d + 15) / 16) {
    case 1: head_vector(j, tk, h, s, dtype, 1); break;
    case 2: head_vector(j, tk, h, s, dtype, 2); break;
    case 3: head_vector(j, tk, h, s, dtype, 3); break;
    case 4: head_vector(j, tk, h, s, dtype, 4); break;
    case 5: head_vector(j, tk, h, s, dtype, 5); break;
    case 6: head_vector(j, tk, h, s, dtype, 6); break;
    case 7: head_vector(j, tk, h, s, dtype, 7); break;
    case 8: head_vector(j, tk, h, s, dtype, 8); break;
    default: head_vector(j, tk, h, s, dtype, 0); break;
    }
}

VECTOR_TARGET static void heads_vector(const attention_job *j, int64_t u0, int64_t u1, float *s) {
    const int64_t heads = j->kv_heads * j->group;
    for (int64_t u = u0; u < u1; u++) {
        if (j->dtype == MS_BF16) {
            head_vector_of(j, &j->tokens[u / heads], u % heads, s, MS_BF16);
        } else {
            head_vector_of(j, &j->tokens[u / heads], u % heads, s, MS_F32);
        }
    }
}

static int use_vectors = -1; // the AVX-512 heads; set on first use

/** The (token, head) pairs of one share. */
static void heads_share(const void *ctx, int part, int parts) {
    const attention_job *j = ctx;
    const int64_t units = j->count * j->kv_heads * j->group;
    const int64_t u0 = units * part / parts, u1 = units * (part + 1) / parts;
    float *scores = NULL;
    if (use_vectors && !cpu_prefer_portable()) {
        scores = aligned_alloc(64, (size_t) (j->longest + 15) / 16 * 16 * sizeof(float));
    }
    if (scores) {
        heads_vector(j, u0, u1, scores);
        free(scores);
    } else {
        heads_portable(j, u0, u1); // also when the scores' memory could not be had
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

int attention_decode_tokens(int dtype, int64_t kv_heads, int64_t group, int64_t d, const decode_token *tokens,
                            int64_t count) {
    attention_job job = {dtype, kv_heads, group, d, tokens, count, 0};
    int64_t work = 0;
    for (int64_t i = 0; i < count; i++) {
        const decode_token *tk = &tokens[i];
        // the new key and value go into the cache first: every query head of a group reads them
        if (dtype == MS_BF16) {
            write_kv(MS_BF16, tk->qkv, 0, kv_heads, group, d, tk->cos, tk->sin, tk->k_cache, tk->v_cache,
                     tk->capacity, tk->past);
        } else {
            write_kv(MS_F32, tk->qkv, 0, kv_heads, group, d, tk->cos, tk->sin, tk->k_cache, tk->v_cache,
                     tk->capacity, tk->past);
        }
        job.longest = tk->past + 1 > job.longest ? tk->past + 1 : job.longest;
        work += (tk->past + 1) * kv_heads * group * d;
    }
    if (use_vectors < 0) {
        use_vectors = cpu_has_avx512f();
    }
    pool_run(heads_share, &job, work >= (1 << 15));
    return MS_CPU_OK;
}

int ms_cpu_attention_decode(int dtype, const void *qkv, int64_t kv_heads, int64_t group, int64_t d, const void *cos,
                            const void *sin, void *k_cache, void *v_cache, int64_t capacity, int64_t past, void *out) {
    if (!valid_dtype(dtype) || !qkv || !cos || !sin || !k_cache || !v_cache || !out || kv_heads < 1 || group < 1
            || d < 2 || d % 2 != 0 || d > MS_CPU_MAX_HEAD_DIM || past < 0 || past >= capacity) {
        return MS_CPU_EINVAL;
    }
    const decode_token token = {qkv, cos, sin, k_cache, v_cache, capacity, past, out};
    return attention_decode_tokens(dtype, kv_heads, group, d, &token, 1);
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

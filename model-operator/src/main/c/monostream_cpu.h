// C ABI of libmonostream_cpu.so, the CPU kernels of decode and prefill, bound from Java by
// io.monostream.torch.CpuKernels. Bump the version on any change of a signature or meaning.
//
// Every array is row-major and contiguous, of element type `dtype` (MS_F32 or MS_BF16); sums
// are accumulated in fp32 and BF16 results are rounded to nearest even, at the points where the
// model's libtorch ops round (spec §6 "Numerics"). Functions return MS_CPU_OK, or MS_CPU_EINVAL
// without writing anything.
#ifndef MONOSTREAM_CPU_H
#define MONOSTREAM_CPU_H

#include <stdint.h>

#define MS_CPU_ABI_VERSION 7

// the largest head dimension ms_cpu_attention_decode takes
#define MS_CPU_MAX_HEAD_DIM 512

#define MS_F32 0
#define MS_BF16 1

#define MS_CPU_OK 0
#define MS_CPU_EINVAL 1
#define MS_CPU_ETHREAD 2
#define MS_CPU_ENOMEM 3
#define MS_CPU_EUNSUPPORTED 4 // the CPU lacks the instructions this function needs

#define MS_API __attribute__((visibility("default")))

MS_API int ms_cpu_abi_version(void);

// The instruction set of the BF16 products on this CPU: "avx512bf16", "avx512f", "avx2" or "x86-64".
MS_API const char *ms_cpu_isa(void);

// 1 when the CPU has AMX-BF16 tiles the OS enables (Intel Sapphire Rapids and later), on which
// libtorch's oneDNN multiplies BF16 several times faster than these kernels' vector products.
MS_API int ms_cpu_has_amx_bf16(void);

// Every product and decode attention through the portable loops (1), or the best ones for this
// CPU (0), for tests; returns the previous setting.
MS_API int ms_cpu_prefer_portable(int portable);

// BF16 products and prefill attention through the kernels that widen BF16 to fp32 (1), as on
// AVX-512 CPUs without AVX512-BF16, even where the CPU has it; or the best ones (0). For tests;
// returns the previous setting.
MS_API int ms_cpu_prefer_wide(int wide);

// Threads (the caller included) that share one call; 1..64. One pool per process.
MS_API int ms_cpu_set_threads(int threads);
MS_API int ms_cpu_threads(void);

// y[m,n] = x[m,k] · w[n,k]ᵀ. Made for a few rows of x: the weight is streamed once. From 17 rows
// on (prefill), F32 and BF16 with an even k on a CPU with AVX-512 take a register-blocked product
// instead (BF16 widened to fp32 without AVX512-BF16); each row's sums still do not depend on the
// other rows of the call.
MS_API int ms_cpu_linear(int dtype, const void *x, int64_t m, int64_t k, const void *w, int64_t n, void *y);

// y[m,n] = x[m,k] · w[n,k]ᵀ + bias[n], rounded once: the register-blocked product of
// ms_cpu_linear for any m, with a bias (prefill layers with one, such as the vision connector).
// Only where ms_cpu_linear would take that product for many rows; MS_CPU_EUNSUPPORTED otherwise.
MS_API int ms_cpu_linear_bias(int dtype, const void *x, int64_t m, int64_t k, const void *w, const void *bias,
                              int64_t n, void *y);

// y[m,n] = silu(x·w1ᵀ) ⊙ (x·w3ᵀ), the SwiGLU gate of an FFN expert (w1, w3 [n,k]); in BF16 both
// products, the silu and the result are each rounded, as three libtorch ops would.
MS_API int ms_cpu_gated_linear(int dtype, const void *x, int64_t m, int64_t k, const void *w1, const void *w3,
                               int64_t n, void *y);

// y[r,:] = w ⊙ (x[r,:] / sqrt(mean(x[r,:]²) + eps)) for rows r < rows: statistics and scaling in
// fp32, rounded to dtype before the weight multiply (spec §6 RMSNorm).
MS_API int ms_cpu_rms_norm(int dtype, const void *x, int64_t rows, int64_t hidden, const void *w, float eps, void *y);

// One new token of one sequence through causal attention against its KV cache (spec §6):
//   qkv   [kv_heads, group + 2, d]: the token's fused wqkv output (group query heads, K, V per KV head)
//   cos, sin [d]: the rotary tables at the token's position, in dtype
//   k_cache, v_cache [kv_heads, capacity, d]: rows < past hold the earlier tokens; the token's
//         rotated K and its V are written at row past
//   out   [kv_heads · group · d]: softmax(q·Kᵀ/√d)·V per query head, in query-head order
MS_API int ms_cpu_attention_decode(int dtype, const void *qkv, int64_t kv_heads, int64_t group, int64_t d,
                                   const void *cos, const void *sin, void *k_cache, void *v_cache,
                                   int64_t capacity, int64_t past, void *out);

// The attention inputs of `length` new tokens of one sequence (a prompt or a chunk of one), for
// libtorch's attention to take from there:
//   qkv   [length, kv_heads, group + 2, d]: the tokens' fused wqkv output
//   cos, sin [length, d]: the rotary tables at positions past .. past + length - 1, in dtype
//   k_cache, v_cache [kv_heads, capacity, d]: the rotated keys and the values go to rows
//         past .. past + length - 1
//   q_out [kv_heads · group, length, d]: the rotated queries, head after head
// with the roundings of ms_cpu_attention_decode.
MS_API int ms_cpu_attention_inputs(int dtype, const void *qkv, int64_t length, int64_t kv_heads, int64_t group,
                                   int64_t d, const void *cos, const void *sin, void *k_cache, void *v_cache,
                                   int64_t capacity, int64_t past, void *q_out);

// Causal attention of `length` new tokens of one sequence after `past` cached ones, BF16 only
// (AVX512-BF16, or AVX-512 with the operands widened to fp32; MS_CPU_EUNSUPPORTED without
// AVX-512), head dimension a multiple of 16:
//   q     [kv_heads · group, length, d]: the rotated queries, head after head (ms_cpu_attention_inputs)
//   k_cache, v_cache [kv_heads, capacity, d]: rows < past + length hold every key and value
//   out   [length, kv_heads · group · d]: softmax(q·Kᵀ/√d)·V of each query over the keys up to
//         its own position, query after query
// Scores and softmax in fp32, the probabilities rounded to BF16 for the product with V (fp32
// sums), as libtorch's BF16 flash attention.
MS_API int ms_cpu_attention_prefill(int dtype, const void *q, int64_t length, int64_t kv_heads, int64_t group,
                                    int64_t d, const void *k_cache, const void *v_cache, int64_t capacity,
                                    int64_t past, void *out);

// ------------------------------------------------------------------ a whole decode step

// The weights of one decoder layer for ms_cpu_decode_step (the text expert: decode tokens are text).
typedef struct {
    const void *attention_norm; // [hidden]
    const void *wqkv;           // [kv_heads · (group + 2) · head_dim, hidden]
    const void *wo;             // [hidden, heads · head_dim]
    const void *ffn_norm;       // [hidden]
    const void *w1, *w3;        // [intermediate, hidden]
    const void *w2;             // [hidden, intermediate]
} ms_cpu_layer;

// A decoder for ms_cpu_decode_step. Every field is 8 bytes wide, so the layout has no padding.
typedef struct {
    int64_t dtype;              // MS_F32 or MS_BF16, of every weight, cache and table
    int64_t layers, hidden, intermediate, heads, kv_heads, head_dim, vocab;
    double eps;                 // RMSNorm epsilon
    const ms_cpu_layer *layer;  // [layers]
    const void *embeddings;     // [vocab, hidden]
    const void *final_norm;     // [hidden]
    const void *head;           // [vocab, hidden]
} ms_cpu_model;

// One sequence's new token in a decode step. Every field is 8 bytes wide.
typedef struct {
    int64_t token;              // < vocab
    int64_t past;               // cached positions; the token's key and value go to row past
    int64_t capacity;           // rows of each cache
    const void *cos, *sin;      // [head_dim]: the rotary tables at position past, in dtype
    void *const *k_cache;       // [layers] pointers to [kv_heads, capacity, head_dim]
    void *const *v_cache;       // likewise
} ms_cpu_sequence;

// One decode step of m sequences (one new token each), all in this library: embedding, every
// layer (RMSNorm, wqkv, attention against the sequence's cache, wo, residual, RMSNorm, gated
// text expert, w2, residual), the final RMSNorm and the head. Each step rounds where the
// libtorch ops of the model would, so the result equals theirs. logits [m, vocab] receives the
// head's output widened to fp32; the caches get row past of every layer. MS_CPU_ENOMEM when the
// scratch memory cannot be had.
MS_API int ms_cpu_decode_step(const ms_cpu_model *model, const ms_cpu_sequence *sequences, int64_t m, float *logits);

#endif

/*
 * monostream_moe.h: C ABI of the fused multimodal-MoE kernel (spec §6, §8).
 *
 * For every token t with modality m_t (0 = text, `feed_forward`; 1 = image,
 * `feed_forward_ve`) the library computes, on the GPU,
 *
 *     act_t = silu(w1[m_t] f_t) * (w3[m_t] f_t)            monostream_moe_gate_up
 *     y_t   = w2[m_t] act_t      (or y_t += w2[m_t] act_t)  monostream_moe_down
 *
 * with one kernel launch per projection covering the tokens of both experts. Tokens are
 * grouped into runs of consecutive tokens of one modality (the run table, built once per
 * forward on the host); a CTA tile never straddles two runs, so never two experts.
 *
 * Conventions:
 *  - every tensor is bf16, row-major and densely packed, every pointer is a device
 *    pointer aligned to 16 bytes; accumulation is fp32;
 *  - weights are laid out as in the checkpoint (Linear [out,in]): w1, w3 [I,H], w2 [H,I];
 *    w1 and w3 are separate pointers (no repacking needed);
 *  - shapes: hidden H % 128 == 0, intermediate I % 64 == 0 (InternLM2-1.8B: 2048, 8192);
 *  - `stream` is a cudaStream_t passed as void*, so this header needs no CUDA headers;
 *    it must belong to the calling thread's current device;
 *  - functions return MONOSTREAM_MOE_OK (0) or an error code; see
 *    monostream_moe_error_string. Launch functions are asynchronous on `stream`.
 *  - the library links the CUDA runtime statically and exports only these symbols, so it
 *    can live in a process that already loaded libtorch's own libcudart.
 */
#ifndef MONOSTREAM_MOE_H
#define MONOSTREAM_MOE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define MONOSTREAM_MOE_API
#else
#define MONOSTREAM_MOE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version, bumped on any incompatible change of this header. */
#define MONOSTREAM_MOE_ABI_VERSION 1

/* Rows (tokens) per CTA tile. Run tables are built for this tile height. */
#define MONOSTREAM_MOE_TILE_M 128

/* Expert indices: the modality byte of a token selects the expert. */
#define MONOSTREAM_MOE_EXPERT_TEXT 0   /* feed_forward    */
#define MONOSTREAM_MOE_EXPERT_IMAGE 1  /* feed_forward_ve */

/* Flags of monostream_moe_down. */
#define MONOSTREAM_MOE_ADD_TO_OUTPUT 1 /* y_t = bf16(y_t + bf16(w2 act_t)) instead of y_t = bf16(w2 act_t) */

/* Error codes. Codes >= MONOSTREAM_MOE_ERR_CUDA_BASE carry a cudaError_t: code - base. */
#define MONOSTREAM_MOE_OK 0
#define MONOSTREAM_MOE_ERR_INVALID_ARGUMENT 1
#define MONOSTREAM_MOE_ERR_UNSUPPORTED_SHAPE 2
#define MONOSTREAM_MOE_ERR_MISALIGNED 3
#define MONOSTREAM_MOE_ERR_CAPACITY 4
#define MONOSTREAM_MOE_ERR_UNSUPPORTED_DEVICE 5
#define MONOSTREAM_MOE_ERR_CUDA_BASE 1000

/* Kernel paths (monostream_moe_device_path). */
#define MONOSTREAM_MOE_PATH_NONE 0     /* device cannot run the kernel (compute capability < 8.0) */
#define MONOSTREAM_MOE_PATH_MMA_SYNC 1 /* sm_80/86/89 and newer: mma.sync m16n8k16 + cp.async pipeline */
#define MONOSTREAM_MOE_PATH_WGMMA 2    /* sm_90a: wgmma.mma_async + cp.async pipeline */

/*
 * One run of consecutive tokens of one modality. tile_start is the index of the run's first
 * MONOSTREAM_MOE_TILE_M-row tile among all runs (an exclusive prefix sum), so a CTA finds
 * its run by binary search. 16 bytes, plain int32 fields: copy the host array to the device
 * as is.
 */
typedef struct monostream_moe_run {
    int32_t token_start;
    int32_t token_count;
    int32_t expert;
    int32_t tile_start;
} monostream_moe_run;

/* Expert weights, indexed by expert (0 = text, 1 = image); device pointers. */
typedef struct monostream_moe_weights {
    const void* w1[2]; /* gate [I,H] bf16 */
    const void* w3[2]; /* up   [I,H] bf16 */
    const void* w2[2]; /* down [H,I] bf16 */
} monostream_moe_weights;

/* Returns MONOSTREAM_MOE_ABI_VERSION of the built library. */
MONOSTREAM_MOE_API int monostream_moe_abi_version(void);

/* Static, never NULL, description of an error code. */
MONOSTREAM_MOE_API const char* monostream_moe_error_string(int code);

/* Worst-case number of runs for `tokens` tokens (= tokens): size the run table with it. */
MONOSTREAM_MOE_API int32_t monostream_moe_max_runs(int32_t tokens);

/*
 * Host function. Builds the run table from a host modality mask (one byte per token, 0 =
 * text, non-zero = image). Writes *run_count runs into `runs` (capacity entries) and the
 * total tile count into *m_tiles. tokens == 0 gives 0 runs and 0 tiles.
 */
MONOSTREAM_MOE_API int monostream_moe_build_run_table(const uint8_t* modality, int32_t tokens,
                                                     monostream_moe_run* runs, int32_t capacity,
                                                     int32_t* run_count, int32_t* m_tiles);

/* Bytes of device workspace for monostream_moe_forward: the activation [tokens, I] bf16. */
MONOSTREAM_MOE_API size_t monostream_moe_workspace_bytes(int32_t tokens, int32_t intermediate);

/* Which kernel path the given CUDA device would use (MONOSTREAM_MOE_PATH_*); -1 on CUDA error. */
MONOSTREAM_MOE_API int monostream_moe_device_path(int device);

/*
 * act[tokens, I] = silu(x w1ᵀ) * (x w3ᵀ), each token with its run's expert.
 * x [tokens, H]; runs: device copy of the run table; run_count and m_tiles as built.
 */
MONOSTREAM_MOE_API int monostream_moe_gate_up(const void* x, void* act,
                                             const monostream_moe_weights* weights,
                                             int32_t tokens, int32_t hidden, int32_t intermediate,
                                             const monostream_moe_run* runs, int32_t run_count,
                                             int32_t m_tiles, void* stream);

/*
 * y[tokens, H] = act w2ᵀ (flags 0) or y += act w2ᵀ (MONOSTREAM_MOE_ADD_TO_OUTPUT, the
 * decoder's residual; the product is rounded to bf16 before the add, as in PyTorch).
 */
MONOSTREAM_MOE_API int monostream_moe_down(const void* act, void* y,
                                          const monostream_moe_weights* weights,
                                          int32_t tokens, int32_t hidden, int32_t intermediate,
                                          const monostream_moe_run* runs, int32_t run_count,
                                          int32_t m_tiles, int32_t flags, void* stream);

/* gate_up then down, with `workspace` (>= monostream_moe_workspace_bytes) as the activation. */
MONOSTREAM_MOE_API int monostream_moe_forward(const void* x, void* y, void* workspace,
                                             const monostream_moe_weights* weights,
                                             int32_t tokens, int32_t hidden, int32_t intermediate,
                                             const monostream_moe_run* runs, int32_t run_count,
                                             int32_t m_tiles, int32_t flags, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* MONOSTREAM_MOE_H */

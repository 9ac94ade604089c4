// gemm_params.h: what one launch of a fused MoE projection needs, and the per-arch launchers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "moe_schedule.h"

namespace ms {

// One projection over the run table: out = epilogue(A Bᵀ) with A [tokens, k] and the
// expert's weights B [n, k] (Linear [out,in], so both operands are K-major).
struct GemmParams {
    const __nv_bfloat16* a;        // x (gate/up) or the activation (down)
    __nv_bfloat16* out;            // the activation (gate/up) or y (down)
    const __nv_bfloat16* b_lo[2];  // per expert: w1 (gate/up) or w2 (down)
    const __nv_bfloat16* b_hi[2];  // per expert: w3 (gate/up); unused by down
    const Run* runs;               // device run table
    int32_t run_count;
    int32_t m_tiles;
    int32_t k;       // reduction length = row pitch of a and of the weights
    int32_t out_ld;  // row pitch of out
    int32_t add;     // down: out = bf16(out + bf16(result))
};

// Dynamic shared memory of each path (pipeline stages; the epilogue reuses them).
constexpr int kSm80Stages = 4;
constexpr int kSm80SmemBytes = kSm80Stages * 2 * kTileM * kSm80BK * 2;  // 64 KiB
constexpr int kSm90Stages = 5;
constexpr int kSm90SmemBytes = kSm90Stages * 2 * kTileM * kSm90BK * 2 + 1024;  // + 1 KiB alignment slack
static_assert(kTileM == kTileN, "A and B tiles share one shape per stage");
static_assert(kTileM * (kTileN + 8) * 2 <= kSm80SmemBytes, "epilogue stage fits the sm80 pipeline buffers");

// Enqueue one projection on `stream`; `blocks` = m_tiles * n_tiles. Return the launch error.
template <Kind kKind>
cudaError_t launch_sm80(const GemmParams& p, int32_t blocks, cudaStream_t stream);
template <Kind kKind>
cudaError_t launch_sm90(const GemmParams& p, int32_t blocks, cudaStream_t stream);

}  // namespace ms

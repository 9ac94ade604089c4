// stage_loader.cuh: the cp.async producer both kernels share. Each thread's 16-byte copies of
// one pipeline stage (a run's rows of A, zero-filled past the run; the tile's weight rows of the
// run's expert) and their swizzled shared-memory slots are fixed over the k loop, so they are
// computed once; load() then issues one stage. kArch (80 or 90) picks the tile depth and swizzle.
#pragma once

#include <cuda_bf16.h>

#include "gemm_params.h"
#include "moe_schedule.h"
#include "ptx.cuh"

namespace ms {

template <Kind kKind, int kArch>
struct StageLoader {
    static constexpr int kCpr = kArch == 90 ? kSm90ChunksPerRow : kSm80ChunksPerRow;
    static constexpr int kBK = kArch == 90 ? kSm90BK : kSm80BK;
    static constexpr int kTileBytes = kTileM * kBK * 2;
    static constexpr int kCopies = kTileM * kCpr / kThreads;  // 16-byte chunks per thread per operand

    const __nv_bfloat16* a_src[kCopies];
    const __nv_bfloat16* b_src[kCopies];
    uint32_t dst[kCopies];
    bool a_valid[kCopies];

    __device__ __forceinline__ StageLoader(const GemmParams& p, const Tile& tile, int tid) {
        const int64_t k = p.k;
        const __nv_bfloat16* b_lo = tile.expert ? p.b_lo[1] : p.b_lo[0];
        const __nv_bfloat16* b_hi = tile.expert ? p.b_hi[1] : p.b_hi[0];
#pragma unroll
        for (int i = 0; i < kCopies; ++i) {
            const Chunk ch = copy_chunk(tid, i, kCpr);
            a_valid[i] = ch.row < tile.rows;
            a_src[i] = p.a + (tile.row_begin + (a_valid[i] ? ch.row : 0)) * k + ch.chunk * 8;
            bool up = false;
            const int32_t wr = weight_row(kKind, tile.n_tile, ch.row, &up);
            b_src[i] = (up ? b_hi : b_lo) + wr * k + ch.chunk * 8;
            const int slot = kArch == 90 ? sm90_smem_chunk(ch.row, ch.chunk) : sm80_smem_chunk(ch.row, ch.chunk);
            dst[i] = static_cast<uint32_t>(slot * 16);
        }
    }

    /** Issues the copies of k tile kt into the stage at shared address stage_base (A, then B). */
    __device__ __forceinline__ void load(uint32_t stage_base, int kt) const {
#pragma unroll
        for (int i = 0; i < kCopies; ++i) {
            cp_async_16(stage_base + dst[i], a_src[i] + kt * kBK, a_valid[i]);
            cp_async_16(stage_base + kTileBytes + dst[i], b_src[i] + kt * kBK, true);
        }
    }
};

}  // namespace ms

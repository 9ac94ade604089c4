// epilogue.cuh: the fused epilogues. Accumulators are first written as bf16 into a shared
// stage tile (SiLU(gate)·up for gate/up), then stored with 16-byte coalesced row writes,
// optionally added to the residual already in the output (down).
#pragma once

#include <cuda_bf16.h>

#include "gemm_params.h"
#include "moe_schedule.h"

namespace ms {

__device__ __forceinline__ float silu(float g) { return g / (1.0f + __expf(-g)); }

// Two adjacent columns of the stage tile.
__device__ __forceinline__ void stage_pair(__nv_bfloat16* stage, int pitch, Coord c, float v0, float v1) {
    *reinterpret_cast<__nv_bfloat162*>(stage + c.row * pitch + c.col) = __floats2bfloat162_rn(v0, v1);
}

// Stage tile -> global rows of the tile's tokens; rows past the run are not written.
template <Kind kKind>
__device__ __forceinline__ void store_stage(const GemmParams& p, const Tile& tile, const __nv_bfloat16* stage) {
    constexpr int kPitch = kKind == Kind::GateUp ? kGateUpCols + 8 : kTileN + 8;
#pragma unroll
    for (int i = 0; i < kTileM * (kPitch - 8) / 8 / kThreads; ++i) {
        const Chunk ch = store_chunk(kKind, static_cast<int>(threadIdx.x), i);
        if (ch.row >= tile.rows) continue;
        uint4 v = *reinterpret_cast<const uint4*>(stage + ch.row * kPitch + ch.chunk * 8);
        __nv_bfloat16* dst = p.out + static_cast<int64_t>(tile.row_begin + ch.row) * p.out_ld +
                             out_col(kKind, tile.n_tile, ch.chunk * 8);
        if (kKind == Kind::Down && p.add) {
            const uint4 r = *reinterpret_cast<const uint4*>(dst);
            __nv_bfloat162* vv = reinterpret_cast<__nv_bfloat162*>(&v);
            const __nv_bfloat162* rr = reinterpret_cast<const __nv_bfloat162*>(&r);
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const float2 a = __bfloat1622float2(vv[j]);
                const float2 b = __bfloat1622float2(rr[j]);
                vv[j] = __floats2bfloat162_rn(a.x + b.x, a.y + b.y);
            }
        }
        *reinterpret_cast<uint4*>(dst) = v;
    }
}

}  // namespace ms

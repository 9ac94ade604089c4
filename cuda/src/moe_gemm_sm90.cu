// moe_gemm_sm90.cu: the fused MoE projections for Hopper (sm_90a): wgmma.mma_async
// m64n128k16 reading both operands from 128-byte-swizzled shared memory, fed by a 5-stage
// cp.async pipeline (the gather of run rows and the zero fill past a run need no tensor
// maps). CTA tile 128 x 128 x 64: two warpgroups of 64 rows each, one wgmma group in flight.

#include "epilogue.cuh"
#include "launch.cuh"
#include "gemm_params.h"
#include "moe_schedule.h"
#include "ptx.cuh"
#include "stage_loader.cuh"

namespace ms {

namespace {

template <Kind kKind>
__global__ void __launch_bounds__(kThreads, 1) moe_gemm_sm90(const __grid_constant__ GemmParams p) {
#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int kCpr = kSm90ChunksPerRow;
    constexpr int kTileBytes = kTileM * kSm90BK * 2;  // 16 KiB, a multiple of the 1 KiB swizzle atom
    constexpr int kStageBytes = 2 * kTileBytes;
    constexpr int kAhead = kSm90Stages - 2;  // tiles prefetched; one more stage is still read by wgmma
    extern __shared__ uint8_t smem_raw[];
    // The swizzle atoms and the descriptors' base offset 0 need 1024-byte aligned tiles.
    uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t(1023));

    const Tile tile = decode_tile(blockIdx.x, p.runs, p.run_count, p.m_tiles);
    const int tid = static_cast<int>(threadIdx.x);
    const StageLoader<kKind, 90> loader(p, tile, tid);
    const uint32_t smem_base = smem_u32(smem);
    auto load_stage = [&](int stage, int kt) { loader.load(smem_base + stage * kStageBytes, kt); };

    // Warpgroup g multiplies A rows 64g..64g+63 by the whole 128-row B tile.
    const uint32_t a_tile_off = static_cast<uint32_t>((tid >> 7) * 64 * kCpr * 16);
    float acc[kSm90AccRegs];
#pragma unroll
    for (int r = 0; r < kSm90AccRegs; ++r) acc[r] = 0.0f;

    const int kt_count = p.k / kSm90BK;
#pragma unroll
    for (int s = 0; s < kAhead; ++s) {
        if (s < kt_count) load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < kt_count; ++kt) {
        cp_async_wait<kAhead - 1>();  // tile kt has landed (this thread's copies)
        fence_proxy_async_shared();   // ... and is visible to wgmma's async proxy
        __syncthreads();              // ... for everyone's copies; wgmma group kt-2 is done
        const int next = kt + kAhead;
        if (next < kt_count) load_stage(next % kSm90Stages, next);  // the stage of group kt-2
        cp_async_commit();

        const uint32_t s = smem_base + (kt % kSm90Stages) * kStageBytes;
        const uint64_t desc_a = wgmma_desc_sw128(s + a_tile_off);
        const uint64_t desc_b = wgmma_desc_sw128(s + kTileBytes);
        fence_operands(acc);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kSm90BK / 16; ++kk)  // 32 bytes along K inside the swizzled rows
            wgmma_m64n128k16(acc, desc_a + 2 * kk, desc_b + 2 * kk);
        wgmma_commit();
        wgmma_wait<1>();  // keep this group in flight, retire the previous one
        fence_operands(acc);
    }
    wgmma_wait<0>();
    fence_operands(acc);
    cp_async_wait<0>();
    __syncthreads();  // pipeline buffers become the epilogue stage

    __nv_bfloat16* stage = reinterpret_cast<__nv_bfloat16*>(smem);
    constexpr int kPitch = kKind == Kind::GateUp ? kGateUpCols + 8 : kTileN + 8;
    // Registers 0..31 hold gate columns 0..63, registers 32..63 the up values of the same
    // (row, column) in the same order (sm90_acc_coord).
#pragma unroll
    for (int r = 0; r < (kKind == Kind::GateUp ? kSm90AccRegs / 2 : kSm90AccRegs); r += 2) {
        const Coord c = sm90_acc_coord(tid, r);
        if (kKind == Kind::GateUp)
            stage_pair(stage, kPitch, c, silu(acc[r]) * acc[r + kSm90AccRegs / 2],
                       silu(acc[r + 1]) * acc[r + 1 + kSm90AccRegs / 2]);
        else
            stage_pair(stage, kPitch, c, acc[r], acc[r + 1]);
    }
    __syncthreads();
    store_stage<kKind>(p, tile, stage);
#endif
}

}  // namespace

template <Kind kKind>
cudaError_t launch_sm90(const GemmParams& p, int32_t blocks, cudaStream_t stream) {
    return launch_with_smem<moe_gemm_sm90<kKind>, kSm90SmemBytes>(p, blocks, kThreads, stream);
}

template cudaError_t launch_sm90<Kind::GateUp>(const GemmParams&, int32_t, cudaStream_t);
template cudaError_t launch_sm90<Kind::Down>(const GemmParams&, int32_t, cudaStream_t);

}  // namespace ms

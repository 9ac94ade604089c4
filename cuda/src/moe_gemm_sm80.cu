// moe_gemm_sm80.cu: the fused MoE projections for sm_80/86/89 (and newer GPUs through the
// compute_80 PTX): mma.sync m16n8k16 bf16 tensor cores fed by a 4-stage cp.async pipeline
// and ldmatrix from XOR-swizzled shared memory. CTA tile 128 x 128 x 32, 8 warps of 64 x 32.

#include "epilogue.cuh"
#include "launch.cuh"
#include "gemm_params.h"
#include "moe_schedule.h"
#include "ptx.cuh"
#include "stage_loader.cuh"

namespace ms {

namespace {

// Not built into the sm_90a cubin: Hopper runs the wgmma kernel.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800 && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MS_SM80_BODY 1
#endif

template <Kind kKind>
__global__ void __launch_bounds__(kThreads, 2) moe_gemm_sm80(const __grid_constant__ GemmParams p) {
#if defined(MS_SM80_BODY)
    constexpr int kCpr = kSm80ChunksPerRow;
    constexpr int kTileBytes = kTileM * kSm80BK * 2;
    constexpr int kStageBytes = 2 * kTileBytes;
    extern __shared__ __align__(128) uint8_t smem[];

    const Tile tile = decode_tile(blockIdx.x, p.runs, p.run_count, p.m_tiles);
    const int tid = static_cast<int>(threadIdx.x);
    const StageLoader<kKind, 80> loader(p, tile, tid);
    const uint32_t smem_base = smem_u32(smem);
    auto load_stage = [&](int stage, int kt) { loader.load(smem_base + stage * kStageBytes, kt); };

    // ldmatrix row addresses. Rows 16 apart share a swizzle, so only the k half (kk) varies.
    const int warp = tid >> 5, lane = tid & 31;
    const int wm = warp >> 2, wn = warp & 3;
    uint32_t a_off[2], b_off[2];
#pragma unroll
    for (int kk = 0; kk < 2; ++kk) {
        a_off[kk] = sm80_smem_chunk(64 * wm + (lane & 15), 2 * kk + (lane >> 4)) * 16;
        b_off[kk] = kTileBytes + sm80_smem_chunk(sm80_b_row(kKind, wn, lane >> 4) + (lane & 7), 2 * kk + ((lane >> 3) & 1)) * 16;
    }
    // Byte distance between the B rows of n-fragment pairs {0,1} and {2,3}.
    constexpr uint32_t kPairBytes = (kKind == Kind::GateUp ? kGateUpCols : 16) * kCpr * 16;

    float acc[kSm80WarpMFrags][kSm80WarpNFrags][4];
#pragma unroll
    for (int mf = 0; mf < kSm80WarpMFrags; ++mf)
#pragma unroll
        for (int nf = 0; nf < kSm80WarpNFrags; ++nf)
#pragma unroll
            for (int i = 0; i < 4; ++i) acc[mf][nf][i] = 0.0f;

    const int kt_count = p.k / kSm80BK;
#pragma unroll
    for (int s = 0; s < kSm80Stages - 1; ++s) {
        if (s < kt_count) load_stage(s, s);
        cp_async_commit();
    }
    for (int kt = 0; kt < kt_count; ++kt) {
        cp_async_wait<kSm80Stages - 2>();  // tile kt has landed (this thread's copies)
        __syncthreads();                   // ... everyone's; and stage kt-1 is no longer read
        const int next = kt + kSm80Stages - 1;
        if (next < kt_count) load_stage(next % kSm80Stages, next);
        cp_async_commit();

        const uint32_t s = smem_base + (kt % kSm80Stages) * kStageBytes;
#pragma unroll
        for (int kk = 0; kk < 2; ++kk) {
            uint32_t a[kSm80WarpMFrags][4];
            uint32_t b[kSm80WarpNFrags][2];
#pragma unroll
            for (int mf = 0; mf < kSm80WarpMFrags; ++mf)
                ldmatrix_x4(s + a_off[kk] + mf * 16 * kCpr * 16, a[mf][0], a[mf][1], a[mf][2], a[mf][3]);
#pragma unroll
            for (int pr = 0; pr < 2; ++pr)
                ldmatrix_x4(s + b_off[kk] + pr * kPairBytes, b[2 * pr][0], b[2 * pr][1], b[2 * pr + 1][0], b[2 * pr + 1][1]);
#pragma unroll
            for (int mf = 0; mf < kSm80WarpMFrags; ++mf)
#pragma unroll
                for (int nf = 0; nf < kSm80WarpNFrags; ++nf) mma_16816(acc[mf][nf], a[mf], b[nf][0], b[nf][1]);
        }
    }
    cp_async_wait<0>();
    __syncthreads();  // pipeline buffers become the epilogue stage

    __nv_bfloat16* stage = reinterpret_cast<__nv_bfloat16*>(smem);
    constexpr int kPitch = kKind == Kind::GateUp ? kGateUpCols + 8 : kTileN + 8;
#pragma unroll
    for (int mf = 0; mf < kSm80WarpMFrags; ++mf)
#pragma unroll
        for (int nf = 0; nf < (kKind == Kind::GateUp ? 2 : kSm80WarpNFrags); ++nf)
#pragma unroll
            for (int i = 0; i < 4; i += 2) {
                const Coord c = sm80_out_coord(kKind, tid, mf, nf, i);
                if (kKind == Kind::GateUp)
                    stage_pair(stage, kPitch, c, silu(acc[mf][nf][i]) * acc[mf][nf + 2][i],
                               silu(acc[mf][nf][i + 1]) * acc[mf][nf + 2][i + 1]);
                else
                    stage_pair(stage, kPitch, c, acc[mf][nf][i], acc[mf][nf][i + 1]);
            }
    __syncthreads();
    store_stage<kKind>(p, tile, stage);
#endif
}

}  // namespace

template <Kind kKind>
cudaError_t launch_sm80(const GemmParams& p, int32_t blocks, cudaStream_t stream) {
    return launch_with_smem<moe_gemm_sm80<kKind>, kSm80SmemBytes>(p, blocks, kThreads, stream);
}

template cudaError_t launch_sm80<Kind::GateUp>(const GemmParams&, int32_t, cudaStream_t);
template cudaError_t launch_sm80<Kind::Down>(const GemmParams&, int32_t, cudaStream_t);

}  // namespace ms

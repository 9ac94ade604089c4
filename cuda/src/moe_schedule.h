// moe_schedule.h: run table, tile scheduling and every index mapping of the fused MoE
// kernels, as __host__ __device__ functions so the CPU tests run the very code the GPU runs.
// Spec §8: grouped GEMM over runs of one modality; tiles never straddle two experts.
#pragma once

#include <stdint.h>

#include "monostream_moe.h"

#if defined(__CUDACC__)
#define MS_HD __host__ __device__ __forceinline__
#else
#define MS_HD inline
#endif

namespace ms {

using Run = monostream_moe_run;
static_assert(sizeof(Run) == 16, "run table entries are copied to the device as is");

// CTA tile: kTileM token rows by kTileN accumulator columns, on both arch paths.
constexpr int kTileM = MONOSTREAM_MOE_TILE_M;
constexpr int kTileN = 128;
// A gate/up tile holds kTileN/2 gate and kTileN/2 up columns of the same intermediate
// columns, so it produces kTileN/2 activation columns (SiLU·mul in the epilogue).
constexpr int kGateUpCols = kTileN / 2;
constexpr int kThreads = 256;  // 8 warps; 2 warpgroups on sm_90a

enum class Kind : int { GateUp = 0, Down = 1 };

MS_HD int32_t ceil_div(int32_t a, int32_t b) { return (a + b - 1) / b; }

// Output columns produced by one CTA tile of this projection.
MS_HD int out_cols_per_tile(Kind kind) { return kind == Kind::GateUp ? kGateUpCols : kTileN; }

// Number of N tiles: gate/up covers I activation columns, down covers H output columns.
MS_HD int32_t n_tiles(Kind kind, int32_t hidden, int32_t intermediate) {
    return kind == Kind::GateUp ? intermediate / kGateUpCols : hidden / kTileN;
}

// ---- run table (host) ----------------------------------------------------------------

// Worst case: alternating modalities, one run per token.
MS_HD int32_t max_runs(int32_t tokens) { return tokens; }

// Splits the mask into maximal runs of equal modality. Returns a MONOSTREAM_MOE_* code.
inline int build_runs(const uint8_t* modality, int32_t tokens, Run* runs, int32_t capacity,
                      int32_t* run_count, int32_t* m_tiles) {
    if (tokens < 0 || run_count == nullptr || m_tiles == nullptr || (tokens > 0 && modality == nullptr))
        return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
    int32_t count = 0;
    int32_t tiles = 0;
    int32_t t = 0;
    while (t < tokens) {
        const int32_t expert = modality[t] ? MONOSTREAM_MOE_EXPERT_IMAGE : MONOSTREAM_MOE_EXPERT_TEXT;
        int32_t end = t + 1;
        while (end < tokens && (modality[end] ? 1 : 0) == expert) ++end;
        if (count >= capacity || runs == nullptr) return MONOSTREAM_MOE_ERR_CAPACITY;
        runs[count] = Run{t, end - t, expert, tiles};
        tiles += ceil_div(end - t, kTileM);
        ++count;
        t = end;
    }
    *run_count = count;
    *m_tiles = tiles;
    return MONOSTREAM_MOE_OK;
}

// ---- tile scheduling (device and host) -----------------------------------------------

// The run holding global M tile `m_tile`: the last run whose tile_start <= m_tile.
MS_HD int32_t find_run(const Run* runs, int32_t run_count, int32_t m_tile) {
    int32_t lo = 0, hi = run_count - 1;
    while (lo < hi) {
        const int32_t mid = (lo + hi + 1) >> 1;
        if (runs[mid].tile_start <= m_tile) lo = mid; else hi = mid - 1;
    }
    return lo;
}

struct Tile {
    int32_t expert;     // which expert's weights
    int32_t row_begin;  // first token row
    int32_t rows;       // valid rows, 1..kTileM (the rest are zero-filled and not stored)
    int32_t n_tile;     // N tile index
};

// Block `linear` of the 1-D grid (m_tiles * n_tiles blocks). M varies fastest so that
// consecutive CTAs share one weight tile (read from DRAM once, then from L2), which is what
// matters: the weights (2 x 100 MB per layer pair) dwarf the activations.
MS_HD Tile decode_tile(int64_t linear, const Run* runs, int32_t run_count, int32_t m_tiles) {
    const int32_t n_tile = static_cast<int32_t>(linear / m_tiles);
    const int32_t m_tile = static_cast<int32_t>(linear - static_cast<int64_t>(n_tile) * m_tiles);
    const Run run = runs[find_run(runs, run_count, m_tile)];
    const int32_t local = (m_tile - run.tile_start) * kTileM;
    const int32_t left = run.token_count - local;
    return Tile{run.expert, run.token_start + local, left < kTileM ? left : kTileM, n_tile};
}

// ---- operand rows --------------------------------------------------------------------

// Weight row feeding row `b_row` (0..kTileN-1) of a CTA's B tile. Gate/up: rows 0..63 are
// w1 rows, rows 64..127 the w3 rows of the same 64 intermediate columns; *up says which.
MS_HD int32_t weight_row(Kind kind, int32_t n_tile, int b_row, bool* up) {
    if (kind == Kind::Down) { *up = false; return n_tile * kTileN + b_row; }
    *up = b_row >= kGateUpCols;
    return n_tile * kGateUpCols + (b_row & (kGateUpCols - 1));
}

// ---- cp.async copy assignment --------------------------------------------------------

// Copy `i` of a tile of `rows` x `chunks_per_row` 16-byte chunks, thread `tid`: consecutive
// threads take consecutive chunks of a row, so each warp reads whole row segments.
struct Chunk { int row; int chunk; };
MS_HD Chunk copy_chunk(int tid, int i, int chunks_per_row) {
    const int id = tid + i * kThreads;
    return Chunk{id / chunks_per_row, id % chunks_per_row};
}

// ---- shared-memory layouts (units of 16-byte chunks) ---------------------------------

// sm_80 path: BK = 32, rows of 4 chunks (64 bytes). XOR swizzle so the 8 row addresses of
// one ldmatrix 8x8 matrix fall into 8 distinct bank groups.
constexpr int kSm80BK = 32;
constexpr int kSm80ChunksPerRow = kSm80BK / 8;
MS_HD int sm80_smem_chunk(int row, int chunk) { return row * kSm80ChunksPerRow + (chunk ^ ((row >> 1) & 3)); }

// sm_90a path: BK = 64, rows of 8 chunks (128 bytes) in the wgmma 128-byte-swizzle layout
// (K-major, 8-row x 128-byte atoms, chunk XOR row mod 8); tile bases are 1024-byte aligned.
constexpr int kSm90BK = 64;
constexpr int kSm90ChunksPerRow = kSm90BK / 8;
MS_HD int sm90_smem_chunk(int row, int chunk) { return row * kSm90ChunksPerRow + (chunk ^ (row & 7)); }

// ---- accumulator fragments -----------------------------------------------------------

struct Coord { int row; int col; };

// sm_80: 8 warps as 2 (M) x 4 (N); warp tile 64 x 32 = 4 x 4 mma.m16n8k16 tiles.
// Accumulator register i (0..3) of the m16n8 tile: row lane/4 + 8*(i/2), col 2*(lane%4) + i%2.
constexpr int kSm80WarpMFrags = 4;
constexpr int kSm80WarpNFrags = 4;
MS_HD Coord mma_m16n8_acc(int lane, int i) { return Coord{(lane >> 2) + 8 * (i >> 1), 2 * (lane & 3) + (i & 1)}; }

// B tile row of n-fragment `nf` of warp column `wn`. Gate/up: fragments 0,1 are gate columns
// 16wn..16wn+15 and fragments 2,3 the up columns of the same intermediate columns, so each
// thread holds gate and up of one output element (nf and nf+2) for the SiLU·mul epilogue.
MS_HD int sm80_b_row(Kind kind, int wn, int nf) {
    if (kind == Kind::Down) return 32 * wn + 8 * nf;
    return (nf >= 2 ? kGateUpCols : 0) + 16 * wn + 8 * (nf & 1);
}

// Tile coordinate (row, output column) of accumulator (mf, nf, i) of thread `tid`; for
// gate/up only nf 0,1 are outputs (their partners nf+2 are the up values).
MS_HD Coord sm80_out_coord(Kind kind, int tid, int mf, int nf, int i) {
    const int warp = tid >> 5, lane = tid & 31;
    const int wm = warp >> 2, wn = warp & 3;
    const Coord c = mma_m16n8_acc(lane, i);
    const int col = kind == Kind::Down ? 32 * wn + 8 * nf : 16 * wn + 8 * nf;
    return Coord{64 * wm + 16 * mf + c.row, col + c.col};
}

// sm_90a: warpgroup g (warps 4g..4g+3) owns rows 64g..64g+63 with one m64n128 accumulator.
// Register r: chunk c = r/4 of 8 columns, row 16*(warp%4) + lane/4 + 8*((r%4)/2),
// col 8c + 2*(lane%4) + r%2. Gate/up: chunks 0..7 are gate, chunks 8..15 the matching up.
constexpr int kSm90AccRegs = kTileN / 2;  // 64 fp32 per thread
MS_HD Coord sm90_acc_coord(int tid, int r) {
    const int warp = tid >> 5, lane = tid & 31;
    const Coord c = mma_m16n8_acc(lane, r & 3);
    return Coord{64 * (warp >> 2) + 16 * (warp & 3) + c.row, 8 * (r >> 2) + c.col};
}

// ---- epilogue ------------------------------------------------------------------------

// The epilogue stages the bf16 tile in shared memory (row pitch padded by one chunk against
// bank conflicts), then each thread stores 16-byte chunks: store `i` of thread `tid`.
MS_HD int stage_pitch(Kind kind) { return out_cols_per_tile(kind) + 8; }  // in bf16 elements
MS_HD int store_count(Kind kind) { return kTileM * out_cols_per_tile(kind) / 8 / kThreads; }
MS_HD Chunk store_chunk(Kind kind, int tid, int i) { return copy_chunk(tid, i, out_cols_per_tile(kind) / 8); }

// Global output column of tile-local column `col`.
MS_HD int32_t out_col(Kind kind, int32_t n_tile, int col) { return n_tile * out_cols_per_tile(kind) + col; }

}  // namespace ms

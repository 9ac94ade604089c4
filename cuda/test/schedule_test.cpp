// Host tests of the fused MoE's scheduling (cuda/src/moe_schedule.h): the kernels' tile loop,
// operand rows, fragment and epilogue mappings are replayed on the CPU with float maths and
// compared with a per-token MoE and with the engine's partitioned MoE (spec §6, §8, §10.9).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "moe_schedule.h"

namespace {

int failures = 0;
int checks = 0;
#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        ++checks;                                                               \
        if (!(cond)) {                                                          \
            ++failures;                                                         \
            if (failures <= 20) {                                               \
                std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
                std::printf(__VA_ARGS__);                                       \
                std::printf("\n");                                              \
            }                                                                   \
        }                                                                       \
    } while (0)

using ms::Kind;

// bf16 as its bit pattern; round to nearest even like __float2bfloat16_rn.
uint16_t to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
float from_bf16(uint16_t h) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
float round_bf16(float f) { return from_bf16(to_bf16(f)); }
float silu(float g) { return g / (1.0f + std::exp(-g)); }

// One dot product used by every implementation below, so equal inputs give equal bits.
float dot(const float* a, const float* b, int k) {
    float s = 0.0f;
    for (int i = 0; i < k; ++i) s += a[i] * b[i];
    return s;
}

struct Problem {
    int tokens, hidden, inter;
    std::vector<uint8_t> mask;
    std::vector<float> x;             // [T,H], bf16 values
    std::vector<float> w1[2], w3[2];  // [I,H]
    std::vector<float> w2[2];         // [H,I]
    std::vector<float> residual;      // [T,H]
};

std::vector<float> random_bf16(std::mt19937& rng, size_t n, float scale) {
    std::uniform_real_distribution<float> d(-scale, scale);
    std::vector<float> v(n);
    for (auto& e : v) e = round_bf16(d(rng));
    return v;
}

Problem make_problem(std::mt19937& rng, std::vector<uint8_t> mask, int hidden, int inter) {
    Problem p{static_cast<int>(mask.size()), hidden, inter, std::move(mask), {}, {}, {}, {}, {}};
    p.x = random_bf16(rng, size_t(p.tokens) * hidden, 1.0f);
    for (int e = 0; e < 2; ++e) {
        p.w1[e] = random_bf16(rng, size_t(inter) * hidden, 0.2f);
        p.w3[e] = random_bf16(rng, size_t(inter) * hidden, 0.2f);
        p.w2[e] = random_bf16(rng, size_t(hidden) * inter, 0.2f);
    }
    p.residual = random_bf16(rng, size_t(p.tokens) * hidden, 1.0f);
    return p;
}

// Straightforward per-token MoE: FFN_{m_t}(f_t), spec §6.
void reference_per_token(const Problem& p, bool add, std::vector<float>& act, std::vector<float>& y) {
    act.assign(size_t(p.tokens) * p.inter, 0.0f);
    y.assign(size_t(p.tokens) * p.hidden, 0.0f);
    for (int t = 0; t < p.tokens; ++t) {
        const int e = p.mask[t] ? 1 : 0;
        const float* xt = &p.x[size_t(t) * p.hidden];
        for (int j = 0; j < p.inter; ++j) {
            const float g = dot(xt, &p.w1[e][size_t(j) * p.hidden], p.hidden);
            const float u = dot(xt, &p.w3[e][size_t(j) * p.hidden], p.hidden);
            act[size_t(t) * p.inter + j] = round_bf16(silu(g) * u);
        }
        for (int h = 0; h < p.hidden; ++h) {
            const float v = round_bf16(dot(&act[size_t(t) * p.inter], &p.w2[e][size_t(h) * p.inter], p.inter));
            const size_t o = size_t(t) * p.hidden + h;
            y[o] = add ? round_bf16(p.residual[o] + v) : v;
        }
    }
}

// The engine's partitioned MoE (architecture.md "The multimodal MoE"): gather each
// expert's rows, run its FFN on them, scatter the rows back.
void reference_partitioned(const Problem& p, std::vector<float>& y) {
    y.assign(size_t(p.tokens) * p.hidden, 0.0f);
    for (int e = 0; e < 2; ++e) {
        std::vector<int> rows;
        for (int t = 0; t < p.tokens; ++t) if ((p.mask[t] ? 1 : 0) == e) rows.push_back(t);
        if (rows.empty()) continue;  // a run of one modality skips the other expert
        std::vector<float> act(rows.size() * p.inter);
        for (size_t r = 0; r < rows.size(); ++r) {
            const float* xt = &p.x[size_t(rows[r]) * p.hidden];
            for (int j = 0; j < p.inter; ++j)
                act[r * p.inter + j] = round_bf16(silu(dot(xt, &p.w1[e][size_t(j) * p.hidden], p.hidden)) *
                                                  dot(xt, &p.w3[e][size_t(j) * p.hidden], p.hidden));
            for (int h = 0; h < p.hidden; ++h)
                y[size_t(rows[r]) * p.hidden + h] = round_bf16(dot(&act[r * p.inter], &p.w2[e][size_t(h) * p.inter], p.inter));
        }
    }
}

enum class Path { Sm80, Sm90 };
const char* name(Path path) { return path == Path::Sm80 ? "sm80" : "sm90"; }

// Replays one projection's launch on the CPU: every block of the 1-D grid decodes its tile,
// loads operand rows, "multiplies", runs the fragment -> stage -> global epilogue with the
// kernels' mappings. `writes` counts the stores of every output element.
void emulate_projection(Kind kind, Path path, const Problem& p, const std::vector<ms::Run>& runs,
                        int32_t m_tiles, const std::vector<float>& a, std::vector<float>& out,
                        std::vector<int>& writes, bool add, const std::vector<float>* residual) {
    const int k = kind == Kind::GateUp ? p.hidden : p.inter;
    const int cols = kind == Kind::GateUp ? p.inter : p.hidden;
    const int32_t nt = ms::n_tiles(kind, p.hidden, p.inter);
    const int out_n = ms::out_cols_per_tile(kind);
    const int pitch = ms::stage_pitch(kind);
    std::vector<float> acc(size_t(ms::kTileM) * ms::kTileN);
    std::vector<float> stage(size_t(ms::kTileM) * pitch);
    std::vector<int> stage_writes(size_t(ms::kTileM) * pitch);
    const int32_t run_count = static_cast<int32_t>(runs.size());
    for (int64_t block = 0; block < int64_t(m_tiles) * nt; ++block) {
        const ms::Tile tile = ms::decode_tile(block, runs.data(), run_count, m_tiles);
        CHECK(tile.rows >= 1 && tile.rows <= ms::kTileM, "block %lld rows %d", (long long)block, tile.rows);
        CHECK(tile.n_tile >= 0 && tile.n_tile < nt, "n_tile %d", tile.n_tile);
        // a tile never straddles two experts: every valid row has the tile's modality
        for (int r = 0; r < tile.rows; ++r)
            CHECK((p.mask[tile.row_begin + r] ? 1 : 0) == tile.expert, "block %lld row %d", (long long)block, r);
        // main loop: A rows are tokens (zero beyond the tile), B rows are weight rows
        const std::vector<float>* w_lo = kind == Kind::GateUp ? &p.w1[tile.expert] : &p.w2[tile.expert];
        const std::vector<float>* w_hi = kind == Kind::GateUp ? &p.w3[tile.expert] : &p.w2[tile.expert];
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int b = 0; b < ms::kTileN; ++b) {
            bool up = false;
            const int32_t wr = ms::weight_row(kind, tile.n_tile, b, &up);
            CHECK(wr >= 0 && wr < (kind == Kind::GateUp ? p.inter : p.hidden), "weight row %d", wr);
            const float* wrow = &(up ? *w_hi : *w_lo)[size_t(wr) * k];
            for (int r = 0; r < tile.rows; ++r)
                acc[size_t(r) * ms::kTileN + b] = dot(&a[size_t(tile.row_begin + r) * k], wrow, k);
        }
        // epilogue part 1: fragments -> bf16 stage tile
        std::fill(stage_writes.begin(), stage_writes.end(), 0);
        auto put = [&](ms::Coord c, float v) {
            CHECK(c.row >= 0 && c.row < ms::kTileM && c.col >= 0 && c.col < out_n, "stage (%d,%d)", c.row, c.col);
            stage[size_t(c.row) * pitch + c.col] = round_bf16(v);
            ++stage_writes[size_t(c.row) * pitch + c.col];
        };
        for (int tid = 0; tid < ms::kThreads; ++tid) {
            if (path == Path::Sm80) {
                const int wn = (tid >> 5) & 3;
                const int lane = tid & 31;
                for (int mf = 0; mf < ms::kSm80WarpMFrags; ++mf)
                    for (int nf = 0; nf < ms::kSm80WarpNFrags; ++nf)
                        for (int i = 0; i < 4; ++i) {
                            const int brow = ms::sm80_b_row(kind, wn, nf) + ms::mma_m16n8_acc(lane, i).col;
                            const ms::Coord c = ms::sm80_out_coord(kind, tid, mf, nf, i);
                            const float v = acc[size_t(c.row) * ms::kTileN + brow];
                            if (kind == Kind::Down) { put(c, v); continue; }
                            if (nf >= 2) continue;  // up partners, consumed with nf - 2
                            const int urow = ms::sm80_b_row(kind, wn, nf + 2) + ms::mma_m16n8_acc(lane, i).col;
                            CHECK(urow == brow + ms::kGateUpCols, "gate/up pairing %d %d", brow, urow);
                            put(c, silu(v) * acc[size_t(c.row) * ms::kTileN + urow]);
                        }
            } else {
                for (int r = 0; r < ms::kSm90AccRegs; ++r) {
                    const ms::Coord c = ms::sm90_acc_coord(tid, r);
                    const float v = acc[size_t(c.row) * ms::kTileN + c.col];
                    if (kind == Kind::Down) { put(c, v); continue; }
                    if (c.col >= ms::kGateUpCols) continue;
                    const ms::Coord u = ms::sm90_acc_coord(tid, r + ms::kSm90AccRegs / 2);
                    CHECK(u.row == c.row && u.col == c.col + ms::kGateUpCols, "sm90 pairing");
                    put(c, silu(v) * acc[size_t(u.row) * ms::kTileN + u.col]);
                }
            }
        }
        for (int r = 0; r < ms::kTileM; ++r)
            for (int c = 0; c < out_n; ++c)
                CHECK(stage_writes[size_t(r) * pitch + c] == 1, "%s stage (%d,%d) written %d times", name(path), r, c,
                      stage_writes[size_t(r) * pitch + c]);
        // epilogue part 2: 16-byte chunk stores of valid rows
        for (int tid = 0; tid < ms::kThreads; ++tid)
            for (int i = 0; i < ms::store_count(kind); ++i) {
                const ms::Chunk ch = ms::store_chunk(kind, tid, i);
                if (ch.row >= tile.rows) continue;
                for (int e = 0; e < 8; ++e) {
                    const int32_t col = ms::out_col(kind, tile.n_tile, ch.chunk * 8 + e);
                    CHECK(col >= 0 && col < cols, "column %d", col);
                    const size_t o = size_t(tile.row_begin + ch.row) * cols + col;
                    const float v = stage[size_t(ch.row) * pitch + ch.chunk * 8 + e];
                    out[o] = add ? round_bf16((*residual)[o] + v) : v;
                    ++writes[o];
                }
            }
    }
}

std::vector<ms::Run> runs_of(const std::vector<uint8_t>& mask, int32_t* m_tiles) {
    std::vector<ms::Run> runs(static_cast<size_t>(ms::max_runs(static_cast<int32_t>(mask.size()))));
    int32_t count = -1;
    const int rc = ms::build_runs(mask.data(), static_cast<int32_t>(mask.size()), runs.data(),
                                  static_cast<int32_t>(runs.size()), &count, m_tiles);
    CHECK(rc == MONOSTREAM_MOE_OK, "build_runs rc %d", rc);
    runs.resize(count < 0 ? 0 : count);
    return runs;
}

void check_run_table(const std::vector<uint8_t>& mask, const std::vector<ms::Run>& runs, int32_t m_tiles) {
    int32_t next = 0, tiles = 0;
    for (size_t r = 0; r < runs.size(); ++r) {
        const ms::Run& run = runs[r];
        CHECK(run.token_start == next && run.token_count >= 1, "run %zu contiguous", r);
        CHECK(run.tile_start == tiles, "run %zu tile_start", r);
        for (int t = run.token_start; t < run.token_start + run.token_count; ++t)
            CHECK((mask[t] ? 1 : 0) == run.expert, "run %zu token %d modality", r, t);
        if (r > 0) CHECK(runs[r - 1].expert != run.expert, "runs %zu maximal", r);
        next += run.token_count;
        tiles += ms::ceil_div(run.token_count, ms::kTileM);
    }
    CHECK(next == static_cast<int32_t>(mask.size()), "runs cover the mask");
    CHECK(tiles == m_tiles, "m_tiles %d vs %d", m_tiles, tiles);
}

void run_case(const std::string& label, std::mt19937& rng, std::vector<uint8_t> mask, int hidden, int inter) {
    const int before = failures;
    Problem p = make_problem(rng, std::move(mask), hidden, inter);
    int32_t m_tiles = 0;
    const std::vector<ms::Run> runs = runs_of(p.mask, &m_tiles);
    check_run_table(p.mask, runs, m_tiles);

    std::vector<float> act_ref, y_ref, y_add_ref, y_part;
    reference_per_token(p, false, act_ref, y_ref);
    reference_per_token(p, true, act_ref, y_add_ref);
    reference_partitioned(p, y_part);
    CHECK(y_part == y_ref, "%s: partitioned MoE equals per-token MoE", label.c_str());

    for (Path path : {Path::Sm80, Path::Sm90}) {
        std::vector<float> act(act_ref.size(), NAN), y(y_ref.size(), NAN), y_add(y_ref.size(), NAN);
        std::vector<int> act_writes(act.size()), y_writes(y.size()), add_writes(y.size());
        emulate_projection(Kind::GateUp, path, p, runs, m_tiles, p.x, act, act_writes, false, nullptr);
        emulate_projection(Kind::Down, path, p, runs, m_tiles, act, y, y_writes, false, nullptr);
        emulate_projection(Kind::Down, path, p, runs, m_tiles, act, y_add, add_writes, true, &p.residual);
        size_t bad = 0;
        for (int w : act_writes) bad += w != 1;
        for (int w : y_writes) bad += w != 1;
        for (int w : add_writes) bad += w != 1;
        CHECK(bad == 0, "%s %s: %zu elements not written exactly once", label.c_str(), name(path), bad);
        CHECK(act == act_ref, "%s %s: activation equals reference", label.c_str(), name(path));
        CHECK(y == y_ref, "%s %s: output equals per-token MoE", label.c_str(), name(path));
        CHECK(y_add == y_add_ref, "%s %s: residual add equals reference", label.c_str(), name(path));
    }
    std::printf("%-34s tokens %5d runs %5zu tiles %5d  %s\n", label.c_str(), p.tokens, runs.size(), m_tiles,
                failures == before ? "ok" : "FAILED");
}

std::vector<uint8_t> mask_from_runs(std::mt19937& rng, int tokens, int max_run) {
    std::vector<uint8_t> m;
    uint8_t v = static_cast<uint8_t>(rng() & 1);
    while (static_cast<int>(m.size()) < tokens) {
        const int len = 1 + static_cast<int>(rng() % max_run);
        for (int i = 0; i < len && static_cast<int>(m.size()) < tokens; ++i) m.push_back(v ? 1 + (rng() % 255) : 0);
        v ^= 1;
    }
    return m;
}

void test_shared_memory_layouts() {
    // every 16-byte chunk of a tile maps to one distinct slot
    for (int path = 0; path < 2; ++path) {
        const int cpr = path == 0 ? ms::kSm80ChunksPerRow : ms::kSm90ChunksPerRow;
        std::vector<int> seen(ms::kTileM * cpr);
        for (int r = 0; r < ms::kTileM; ++r)
            for (int c = 0; c < cpr; ++c) ++seen[path == 0 ? ms::sm80_smem_chunk(r, c) : ms::sm90_smem_chunk(r, c)];
        for (int s : seen) CHECK(s == 1, "smem layout %d is a bijection", path);
        // cp.async assignment covers each chunk once with kThreads threads
        std::vector<int> copies(ms::kTileM * cpr);
        for (int tid = 0; tid < ms::kThreads; ++tid)
            for (int i = 0; i < ms::kTileM * cpr / ms::kThreads; ++i) {
                const ms::Chunk ch = ms::copy_chunk(tid, i, cpr);
                ++copies[ch.row * cpr + ch.chunk];
            }
        for (int s : copies) CHECK(s == 1, "copy assignment %d covers once", path);
    }
    // sm_90a: wgmma's 128-byte swizzle (CUTLASS Swizzle<3,4,3>): byte address bits 4..6
    // are XORed with bits 7..9, i.e. the 16-byte chunk with the row inside the 8-row atom
    for (int r = 0; r < ms::kTileM; ++r)
        for (int c = 0; c < ms::kSm90ChunksPerRow; ++c) {
            const int linear = r * 128 + c * 16;
            CHECK(ms::sm90_smem_chunk(r, c) * 16 == (linear ^ (((linear >> 7) & 7) << 4)), "SW128 row %d chunk %d", r, c);
        }
    // ldmatrix on sm_80: the 8 row addresses of one 8x8 matrix (8 consecutive rows, same
    // logical chunk) hit 8 different 16-byte bank groups, so no bank conflicts
    for (int base = 0; base < ms::kTileM; base += 8)
        for (int c = 0; c < ms::kSm80ChunksPerRow; ++c) {
            int groups = 0;
            for (int r = 0; r < 8; ++r) groups |= 1 << (ms::sm80_smem_chunk(base + r, c) & 7);
            CHECK(groups == 0xff, "ldmatrix rows %d chunk %d conflict-free", base, c);
        }
    // cp.async stores of one warp on sm_80 (8 rows x 4 chunks) are conflict-free per 8-chunk phase
    for (int warp = 0; warp < 8; ++warp)
        for (int phase = 0; phase < 4; ++phase) {
            int groups = 0;
            for (int l = 8 * phase; l < 8 * phase + 8; ++l) {
                const ms::Chunk ch = ms::copy_chunk(32 * warp + l, 0, ms::kSm80ChunksPerRow);
                groups |= 1 << (ms::sm80_smem_chunk(ch.row, ch.chunk) & 7);
            }
            CHECK(groups == 0xff, "cp.async phase conflict-free");
        }
}

void test_find_run_tolerates_empty_runs() {
    // hand-made table with zero-length runs (an expert without tokens in between)
    const std::vector<ms::Run> runs = {{0, 0, 1, 0}, {0, 130, 0, 0}, {130, 0, 1, 2}, {130, 1, 1, 2}, {131, 0, 0, 3}};
    const int32_t m_tiles = 3;
    const int expect_row[] = {0, 128, 130};
    const int expect_rows[] = {128, 2, 1};
    const int expect_expert[] = {0, 0, 1};
    for (int m = 0; m < m_tiles; ++m) {
        const ms::Tile t = ms::decode_tile(m, runs.data(), 5, m_tiles);
        CHECK(t.row_begin == expect_row[m] && t.rows == expect_rows[m] && t.expert == expect_expert[m],
              "tile %d: row %d rows %d expert %d", m, t.row_begin, t.rows, t.expert);
    }
}

void test_build_runs_errors() {
    ms::Run one[1];
    int32_t count = 0, tiles = 0;
    const uint8_t mask[3] = {0, 1, 0};
    CHECK(ms::build_runs(mask, 3, one, 1, &count, &tiles) == MONOSTREAM_MOE_ERR_CAPACITY, "capacity");
    CHECK(ms::build_runs(mask, -1, one, 1, &count, &tiles) == MONOSTREAM_MOE_ERR_INVALID_ARGUMENT, "negative");
    CHECK(ms::build_runs(nullptr, 0, nullptr, 0, &count, &tiles) == MONOSTREAM_MOE_OK && count == 0 && tiles == 0,
          "zero tokens: no runs, no tiles");
}

}  // namespace

int main() {
    std::mt19937 rng(20241016);
    test_shared_memory_layouts();
    test_find_run_tolerates_empty_runs();
    test_build_runs_errors();

    const int H = 256, I = 128;  // two N tiles per projection, K spans several k-tiles
    run_case("decode: 1 text token", rng, {0}, H, I);
    run_case("decode: 1 image token", rng, {1}, H, I);
    run_case("all text, 129 tokens", rng, std::vector<uint8_t>(129, 0), H, I);
    run_case("all image, 256 tokens", rng, std::vector<uint8_t>(256, 1), H, I);
    {
        std::vector<uint8_t> alt(300);
        for (size_t i = 0; i < alt.size(); ++i) alt[i] = i & 1;
        run_case("alternating, 300 tokens", rng, alt, H, I);
    }
    {  // prompt shape: text, an image block of 256T tokens straddling tiles, text
        std::vector<uint8_t> m(5, 0);
        m.insert(m.end(), 512, 1);
        m.insert(m.end(), 40, 0);
        run_case("text | 512 image | text", rng, m, H, I);
    }
    for (int len : {127, 128, 129}) {
        std::vector<uint8_t> m;
        for (int r = 0; r < 4; ++r) m.insert(m.end(), len, static_cast<uint8_t>(r & 1));
        run_case("4 runs of " + std::to_string(len), rng, m, H, I);
    }
    for (int tokens : {2, 3, 17, 255, 1000, 2049})
        run_case("random runs <= 300, " + std::to_string(tokens), rng, mask_from_runs(rng, tokens, 300), H, I);
    // 8192 tokens with narrow layers keep the CPU time low while covering the largest grid
    run_case("random runs <= 700, 8192", rng, mask_from_runs(rng, 8192, 700), 128, 64);
    run_case("random runs <= 3, 8192", rng, mask_from_runs(rng, 8192, 3), 128, 64);

    std::printf("%d checks, %d failures\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

// monostream_moe.cpp: the C ABI (include/monostream_moe.h): argument checks, choice of the
// kernel path for the current device, and the two launches. Host code only.
#include "monostream_moe.h"

#include <cuda_runtime.h>

#include <cstdint>

#include "gemm_params.h"
#include "moe_schedule.h"

namespace {

using ms::Kind;

int cuda_code(cudaError_t err) { return err == cudaSuccess ? MONOSTREAM_MOE_OK : MONOSTREAM_MOE_ERR_CUDA_BASE + static_cast<int>(err); }

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The operands and problem fields both projections set the same way (their weights differ).
void set_problem(ms::GemmParams& p, const void* a, void* out, const monostream_moe_run* runs, int32_t run_count,
                 int32_t m_tiles, int32_t k, int32_t out_ld, int add) {
    p.a = static_cast<const __nv_bfloat16*>(a);
    p.out = static_cast<__nv_bfloat16*>(out);
    p.runs = runs;
    p.run_count = run_count;
    p.m_tiles = m_tiles;
    p.k = k;
    p.out_ld = out_ld;
    p.add = add;
}

int path_for(int major, int minor) {
    if (major == 9 && minor == 0) return MONOSTREAM_MOE_PATH_WGMMA;  // the sm_90a cubin
    if (major >= 8) return MONOSTREAM_MOE_PATH_MMA_SYNC;            // sm_80/86/89 cubins, compute_80 PTX otherwise
    return MONOSTREAM_MOE_PATH_NONE;
}

int current_path(int* path) {
    int device = 0, major = 0, minor = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    if (err != cudaSuccess) return cuda_code(err);
    *path = path_for(major, minor);
    return *path == MONOSTREAM_MOE_PATH_NONE ? MONOSTREAM_MOE_ERR_UNSUPPORTED_DEVICE : MONOSTREAM_MOE_OK;
}

// Shapes and the run table's summary; pointers are checked by the callers.
int check_problem(int32_t tokens, int32_t hidden, int32_t inter, const monostream_moe_run* runs, int32_t run_count,
                  int32_t m_tiles) {
    if (tokens < 0 || hidden <= 0 || inter <= 0 || run_count < 0 || m_tiles < 0) return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
    if (hidden % ms::kTileN != 0 || inter % ms::kGateUpCols != 0) return MONOSTREAM_MOE_ERR_UNSUPPORTED_SHAPE;
    // every tile and every run holds at least one token
    if (run_count > tokens || m_tiles > tokens || (tokens > 0 && (run_count == 0 || m_tiles == 0 || runs == nullptr)))
        return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
    return MONOSTREAM_MOE_OK;
}

template <Kind kKind>
int launch(const ms::GemmParams& p, int32_t n_tiles, void* stream) {
    int path = MONOSTREAM_MOE_PATH_NONE;
    const int rc = current_path(&path);
    if (rc != MONOSTREAM_MOE_OK) return rc;
    const int64_t blocks = static_cast<int64_t>(p.m_tiles) * n_tiles;
    if (blocks > INT32_MAX) return MONOSTREAM_MOE_ERR_UNSUPPORTED_SHAPE;
    const cudaStream_t s = static_cast<cudaStream_t>(stream);
    return cuda_code(path == MONOSTREAM_MOE_PATH_WGMMA ? ms::launch_sm90<kKind>(p, static_cast<int32_t>(blocks), s)
                                                       : ms::launch_sm80<kKind>(p, static_cast<int32_t>(blocks), s));
}

const __nv_bfloat16* bf16(const void* p) { return static_cast<const __nv_bfloat16*>(p); }

}  // namespace

extern "C" {

int monostream_moe_abi_version(void) { return MONOSTREAM_MOE_ABI_VERSION; }

const char* monostream_moe_error_string(int code) {
    switch (code) {
        case MONOSTREAM_MOE_OK: return "ok";
        case MONOSTREAM_MOE_ERR_INVALID_ARGUMENT: return "invalid argument (null pointer, negative size or inconsistent run table)";
        case MONOSTREAM_MOE_ERR_UNSUPPORTED_SHAPE: return "unsupported shape (needs hidden % 128 == 0 and intermediate % 64 == 0)";
        case MONOSTREAM_MOE_ERR_MISALIGNED: return "a tensor pointer is not 16-byte aligned";
        case MONOSTREAM_MOE_ERR_CAPACITY: return "run table capacity too small (use monostream_moe_max_runs)";
        case MONOSTREAM_MOE_ERR_UNSUPPORTED_DEVICE: return "CUDA device below compute capability 8.0";
        default: break;
    }
    if (code > MONOSTREAM_MOE_ERR_CUDA_BASE) return cudaGetErrorString(static_cast<cudaError_t>(code - MONOSTREAM_MOE_ERR_CUDA_BASE));
    return "unknown error code";
}

int32_t monostream_moe_max_runs(int32_t tokens) { return ms::max_runs(tokens < 0 ? 0 : tokens); }

int monostream_moe_build_run_table(const uint8_t* modality, int32_t tokens, monostream_moe_run* runs,
                                   int32_t capacity, int32_t* run_count, int32_t* m_tiles) {
    return ms::build_runs(modality, tokens, runs, capacity, run_count, m_tiles);
}

size_t monostream_moe_workspace_bytes(int32_t tokens, int32_t intermediate) {
    if (tokens <= 0 || intermediate <= 0) return 0;
    return static_cast<size_t>(tokens) * static_cast<size_t>(intermediate) * sizeof(__nv_bfloat16);
}

int monostream_moe_device_path(int device) {
    int major = 0, minor = 0;
    cudaError_t err = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    return err == cudaSuccess ? path_for(major, minor) : -1;
}

int monostream_moe_gate_up(const void* x, void* act, const monostream_moe_weights* weights, int32_t tokens,
                           int32_t hidden, int32_t intermediate, const monostream_moe_run* runs, int32_t run_count,
                           int32_t m_tiles, void* stream) {
    int rc = check_problem(tokens, hidden, intermediate, runs, run_count, m_tiles);
    if (rc != MONOSTREAM_MOE_OK || tokens == 0) return rc;
    if (x == nullptr || act == nullptr || weights == nullptr) return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
    ms::GemmParams p{};
    for (int e = 0; e < 2; ++e) {
        if (weights->w1[e] == nullptr || weights->w3[e] == nullptr) return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
        if (!aligned16(weights->w1[e]) || !aligned16(weights->w3[e])) return MONOSTREAM_MOE_ERR_MISALIGNED;
        p.b_lo[e] = bf16(weights->w1[e]);
        p.b_hi[e] = bf16(weights->w3[e]);
    }
    if (!aligned16(x) || !aligned16(act) || !aligned16(runs)) return MONOSTREAM_MOE_ERR_MISALIGNED;
    set_problem(p, x, act, runs, run_count, m_tiles, hidden, intermediate, 0);
    return launch<Kind::GateUp>(p, ms::n_tiles(Kind::GateUp, hidden, intermediate), stream);
}

int monostream_moe_down(const void* act, void* y, const monostream_moe_weights* weights, int32_t tokens,
                        int32_t hidden, int32_t intermediate, const monostream_moe_run* runs, int32_t run_count,
                        int32_t m_tiles, int32_t flags, void* stream) {
    int rc = check_problem(tokens, hidden, intermediate, runs, run_count, m_tiles);
    if (rc != MONOSTREAM_MOE_OK || tokens == 0) return rc;
    if (act == nullptr || y == nullptr || weights == nullptr || (flags & ~MONOSTREAM_MOE_ADD_TO_OUTPUT) != 0)
        return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
    ms::GemmParams p{};
    for (int e = 0; e < 2; ++e) {
        if (weights->w2[e] == nullptr) return MONOSTREAM_MOE_ERR_INVALID_ARGUMENT;
        if (!aligned16(weights->w2[e])) return MONOSTREAM_MOE_ERR_MISALIGNED;
        p.b_lo[e] = bf16(weights->w2[e]);
        p.b_hi[e] = p.b_lo[e];
    }
    if (!aligned16(act) || !aligned16(y) || !aligned16(runs)) return MONOSTREAM_MOE_ERR_MISALIGNED;
    set_problem(p, act, y, runs, run_count, m_tiles, intermediate, hidden, (flags & MONOSTREAM_MOE_ADD_TO_OUTPUT) ? 1 : 0);
    return launch<Kind::Down>(p, ms::n_tiles(Kind::Down, hidden, intermediate), stream);
}

int monostream_moe_forward(const void* x, void* y, void* workspace, const monostream_moe_weights* weights,
                           int32_t tokens, int32_t hidden, int32_t intermediate, const monostream_moe_run* runs,
                           int32_t run_count, int32_t m_tiles, int32_t flags, void* stream) {
    const int rc = monostream_moe_gate_up(x, workspace, weights, tokens, hidden, intermediate, runs, run_count,
                                          m_tiles, stream);
    if (rc != MONOSTREAM_MOE_OK) return rc;
    return monostream_moe_down(workspace, y, weights, tokens, hidden, intermediate, runs, run_count, m_tiles, flags,
                               stream);
}

}  // extern "C"

// gpu_check.cu: on a GPU, compares the library's two projections with a naive fp32 CUDA
// reference on random bf16 inputs and times them. Build: make gpu-check. Exit code 0 = pass.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "monostream_moe.h"

namespace {

#define CUDA_OK(x)                                                                              \
    do {                                                                                        \
        cudaError_t e_ = (x);                                                                   \
        if (e_ != cudaSuccess) { std::printf("%s: %s\n", #x, cudaGetErrorString(e_)); std::exit(2); } \
    } while (0)
#define MOE_OK(x)                                                                               \
    do {                                                                                        \
        int rc_ = (x);                                                                          \
        if (rc_ != 0) { std::printf("%s: %s\n", #x, monostream_moe_error_string(rc_)); std::exit(2); } \
    } while (0)

__global__ void ref_gate_up(const __nv_bfloat16* x, const __nv_bfloat16* const* w1, const __nv_bfloat16* const* w3,
                            const uint8_t* mask, __nv_bfloat16* act, int tokens, int h, int inter) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= int64_t(tokens) * inter) return;
    const int t = int(i / inter), j = int(i % inter), e = mask[t] ? 1 : 0;
    float g = 0.f, u = 0.f;
    for (int k = 0; k < h; ++k) {
        const float xv = __bfloat162float(x[int64_t(t) * h + k]);
        g += xv * __bfloat162float(w1[e][int64_t(j) * h + k]);
        u += xv * __bfloat162float(w3[e][int64_t(j) * h + k]);
    }
    act[i] = __float2bfloat16(g / (1.f + expf(-g)) * u);
}

__global__ void ref_down(const __nv_bfloat16* act, const __nv_bfloat16* const* w2, const uint8_t* mask,
                         const __nv_bfloat16* residual, __nv_bfloat16* y, int tokens, int h, int inter) {
    const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= int64_t(tokens) * h) return;
    const int t = int(i / h), c = int(i % h), e = mask[t] ? 1 : 0;
    float s = 0.f;
    for (int k = 0; k < inter; ++k)
        s += __bfloat162float(act[int64_t(t) * inter + k]) * __bfloat162float(w2[e][int64_t(c) * inter + k]);
    y[i] = __float2bfloat16(__bfloat162float(residual[i]) + __bfloat162float(__float2bfloat16(s)));
}

template <typename T>
T* upload(const std::vector<T>& v) {
    T* d = nullptr;
    CUDA_OK(cudaMalloc(&d, v.size() * sizeof(T) + 16));
    CUDA_OK(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

std::vector<__nv_bfloat16> random_bf16(std::mt19937& rng, size_t n, float scale) {
    std::uniform_real_distribution<float> d(-scale, scale);
    std::vector<__nv_bfloat16> v(n);
    for (auto& e : v) e = __float2bfloat16(d(rng));
    return v;
}

// Worst |a - b| / (|b| + floor) over all elements.
double worst(const std::vector<__nv_bfloat16>& a, const std::vector<__nv_bfloat16>& b, double floor) {
    double w = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double x = __bfloat162float(a[i]), y = __bfloat162float(b[i]);
        const double r = std::fabs(x - y) / (std::fabs(y) + floor);
        if (!(r <= w)) w = r;  // NaN counts as worst
    }
    return w;
}

}  // namespace

int main() {
    const int H = 2048, I = 8192;
    std::mt19937 rng(7);
    int device = 0;
    CUDA_OK(cudaGetDevice(&device));
    cudaDeviceProp prop{};
    CUDA_OK(cudaGetDeviceProperties(&prop, device));
    const int path = monostream_moe_device_path(device);
    std::printf("%s (sm_%d%d), path %s\n", prop.name, prop.major, prop.minor,
                path == MONOSTREAM_MOE_PATH_WGMMA ? "wgmma" : path == MONOSTREAM_MOE_PATH_MMA_SYNC ? "mma.sync" : "none");

    std::vector<__nv_bfloat16*> w(6);
    for (int i = 0; i < 6; ++i) w[i] = upload(random_bf16(rng, size_t(I) * H, 0.03f));
    monostream_moe_weights weights{{w[0], w[1]}, {w[2], w[3]}, {w[4], w[5]}};
    const __nv_bfloat16* w1s[2] = {w[0], w[1]};
    const __nv_bfloat16* w3s[2] = {w[2], w[3]};
    const __nv_bfloat16* w2s[2] = {w[4], w[5]};
    const __nv_bfloat16** d_w1 = upload(std::vector<const __nv_bfloat16*>(w1s, w1s + 2));
    const __nv_bfloat16** d_w3 = upload(std::vector<const __nv_bfloat16*>(w3s, w3s + 2));
    const __nv_bfloat16** d_w2 = upload(std::vector<const __nv_bfloat16*>(w2s, w2s + 2));

    struct Case { std::string name; std::vector<uint8_t> mask; };
    std::vector<Case> cases;
    cases.push_back({"1 text token", {0}});
    cases.push_back({"1 image token", {1}});
    cases.push_back({"all text 300", std::vector<uint8_t>(300, 0)});
    cases.push_back({"all image 256", std::vector<uint8_t>(256, 1)});
    {
        std::vector<uint8_t> m(97);
        for (size_t i = 0; i < m.size(); ++i) m[i] = i & 1;
        cases.push_back({"alternating 97", m});
    }
    {
        std::vector<uint8_t> m(30, 0);
        m.insert(m.end(), 1792, 1);
        m.insert(m.end(), 166, 0);
        cases.push_back({"prompt 30|1792 img|166", m});
    }
    cases.push_back({"all text 8192", std::vector<uint8_t>(8192, 0)});

    bool pass = true;
    for (const Case& c : cases) {
        const int T = int(c.mask.size());
        std::vector<monostream_moe_run> runs(monostream_moe_max_runs(T));
        int32_t run_count = 0, m_tiles = 0;
        MOE_OK(monostream_moe_build_run_table(c.mask.data(), T, runs.data(), int32_t(runs.size()), &run_count, &m_tiles));
        runs.resize(run_count);
        monostream_moe_run* d_runs = upload(runs);
        uint8_t* d_mask = upload(c.mask);
        std::vector<__nv_bfloat16> x = random_bf16(rng, size_t(T) * H, 1.f), res = random_bf16(rng, size_t(T) * H, 1.f);
        __nv_bfloat16 *d_x = upload(x), *d_y = upload(res), *d_yref = upload(res);
        __nv_bfloat16 *d_act = nullptr, *d_actref = nullptr;
        CUDA_OK(cudaMalloc(&d_act, monostream_moe_workspace_bytes(T, I)));
        CUDA_OK(cudaMalloc(&d_actref, monostream_moe_workspace_bytes(T, I)));

        MOE_OK(monostream_moe_gate_up(d_x, d_act, &weights, T, H, I, d_runs, run_count, m_tiles, nullptr));
        MOE_OK(monostream_moe_down(d_act, d_y, &weights, T, H, I, d_runs, run_count, m_tiles, MONOSTREAM_MOE_ADD_TO_OUTPUT, nullptr));
        ref_gate_up<<<unsigned((int64_t(T) * I + 255) / 256), 256>>>(d_x, d_w1, d_w3, d_mask, d_actref, T, H, I);
        ref_down<<<unsigned((int64_t(T) * H + 255) / 256), 256>>>(d_act, d_w2, d_mask, d_yref, d_yref, T, H, I);
        CUDA_OK(cudaDeviceSynchronize());
        std::vector<__nv_bfloat16> act(size_t(T) * I), actref(act.size()), y(size_t(T) * H), yref(y.size());
        CUDA_OK(cudaMemcpy(act.data(), d_act, act.size() * 2, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(actref.data(), d_actref, act.size() * 2, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(y.data(), d_y, y.size() * 2, cudaMemcpyDeviceToHost));
        CUDA_OK(cudaMemcpy(yref.data(), d_yref, y.size() * 2, cudaMemcpyDeviceToHost));
        // the reference down reads the kernel's activation, so both checks isolate one projection
        const double e_act = worst(act, actref, 0.05), e_y = worst(y, yref, 0.05);
        const bool ok = e_act < 0.03 && e_y < 0.03;
        pass = pass && ok;

        // timing: both projections, not the reference
        cudaEvent_t a, b;
        CUDA_OK(cudaEventCreate(&a));
        CUDA_OK(cudaEventCreate(&b));
        const int reps = 20;
        CUDA_OK(cudaEventRecord(a));
        for (int r = 0; r < reps; ++r)
            MOE_OK(monostream_moe_forward(d_x, d_y, d_act, &weights, T, H, I, d_runs, run_count, m_tiles, 0, nullptr));
        CUDA_OK(cudaEventRecord(b));
        CUDA_OK(cudaEventSynchronize(b));
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, a, b));
        const double us = 1000.0 * ms / reps, flop = 2.0 * T * H * I * 3;
        std::printf("%-24s T=%5d runs=%4d  err act %.4f y %.4f  %s  %9.1f us  %6.1f TFLOP/s\n", c.name.c_str(), T,
                    run_count, e_act, e_y, ok ? "ok  " : "FAIL", us, flop / us * 1e-6);
        cudaFree(d_runs); cudaFree(d_mask); cudaFree(d_x); cudaFree(d_y); cudaFree(d_yref); cudaFree(d_act); cudaFree(d_actref);
    }
    std::printf(pass ? "PASS\n" : "FAIL\n");
    return pass ? 0 : 1;
}

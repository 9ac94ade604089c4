// Launching a GEMM kernel that needs more than 48 KiB of dynamic shared memory.
#pragma once

#include <atomic>
#include <cstdint>

#include <cuda_runtime.h>

#include "gemm_params.h"

namespace ms {

// Launches Kernel with SmemBytes of dynamic shared memory. The opt-in to more than 48 KiB is per
// device and per kernel, so it is made once per device (one static bit set per instantiation).
template <auto Kernel, int SmemBytes>
cudaError_t launch_with_smem(const GemmParams& p, int32_t blocks, int threads, cudaStream_t stream) {
    static std::atomic<uint64_t> configured{0};
    int device = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err != cudaSuccess) return err;
    const uint64_t bit = device < 64 ? uint64_t(1) << device : 0;
    if (bit == 0 || (configured.load(std::memory_order_acquire) & bit) == 0) {
        err = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, SmemBytes);
        if (err != cudaSuccess) return err;
        configured.fetch_or(bit, std::memory_order_release);
    }
    Kernel<<<blocks, threads, SmemBytes, stream>>>(p);
    return cudaGetLastError();
}

}  // namespace ms

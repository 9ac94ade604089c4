// C ABI of the decode-sized linear kernel (cpu_linear.c), bound from Java by
// io.monostream.torch.CpuLinearKernel. Bump the version on any change of a signature or meaning.
#ifndef MONOSTREAM_CPU_LINEAR_H
#define MONOSTREAM_CPU_LINEAR_H

#include <stdint.h>

#define MS_CPU_LINEAR_ABI_VERSION 1

// element types (the values of io.monostream.torch.DType's libtorch codes are not used here)
#define MS_F32 0
#define MS_BF16 1

// return codes
#define MS_CPU_OK 0
#define MS_CPU_EINVAL 1
#define MS_CPU_ETHREAD 2

__attribute__((visibility("default"))) int ms_cpu_linear_abi_version(void);

// The instruction set the kernel uses on this CPU: "avx512bf16", "avx512f", "avx2" or "x86-64".
__attribute__((visibility("default"))) const char *ms_cpu_linear_isa(void);

// Makes BF16 products use the portable loop (1) or the best one for this CPU (0), for tests;
// returns the previous setting.
__attribute__((visibility("default"))) int ms_cpu_linear_prefer_portable(int portable);

// Sets the number of threads (the caller included) that share one product; 1..64.
__attribute__((visibility("default"))) int ms_cpu_linear_set_threads(int threads);
__attribute__((visibility("default"))) int ms_cpu_linear_threads(void);

// y[m,n] = x[m,k] · w[n,k]ᵀ, all row-major and contiguous, all of element type dtype; fp32
// accumulation. Returns MS_CPU_OK or MS_CPU_EINVAL (nothing written).
__attribute__((visibility("default"))) int ms_cpu_linear(int dtype, const void *x, int64_t m, int64_t k,
                                                         const void *w, int64_t n, void *y);

#endif

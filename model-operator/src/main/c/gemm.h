// The many-row product behind ms_cpu_linear, ms_cpu_linear_bias and ms_cpu_gated_linear (gemm.c).
#ifndef MONOSTREAM_CPU_GEMM_H
#define MONOSTREAM_CPU_GEMM_H

#include <stdint.h>

// from this many rows of x on, products take gemm where the CPU has what it needs (takes_gemm, linear.c)
#define GEMM_MIN_ROWS 17

/**
 * y[m,n] = x[m,k]·w[n,k]ᵀ (+ bias[n] when bias is not NULL, before the one rounding), or
 * silu(x·wᵀ) ⊙ (x·w3ᵀ) when w3 is not NULL, all of dtype, on a CPU that takes_gemm accepts (the caller
 * checks). MS_CPU_EUNSUPPORTED for BF16 with an odd k or w3 with a bias (nothing is written then);
 * MS_CPU_ENOMEM when the packed copy of x cannot be allocated (nothing written) or, on CPUs without
 * AVX512-BF16, a thread's buffer for the BF16 weight rows it widens (y then partly written).
 */
int gemm(int dtype, const void *x, int64_t m, int64_t k, const void *w, const void *w3, const void *bias, int64_t n,
         void *y);

#endif

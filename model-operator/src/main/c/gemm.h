// The many-row BF16 product behind ms_cpu_linear and ms_cpu_gated_linear (gemm.c).
#ifndef MONOSTREAM_CPU_GEMM_H
#define MONOSTREAM_CPU_GEMM_H

#include <stdint.h>

// from this many rows of x on, BF16 products on AVX512-BF16 CPUs take gemm_bf16
#define GEMM_MIN_ROWS 17

/**
 * y[m,n] = x[m,k]·w[n,k]ᵀ (+ bias[n] when bias is not NULL, before the one rounding), or
 * silu(x·wᵀ) ⊙ (x·w3ᵀ) when w3 is not NULL, all BF16, on a CPU with AVX512-BF16 (the caller
 * checks). MS_CPU_EUNSUPPORTED for odd k or w3 with a bias, MS_CPU_ENOMEM when the packed copy
 * of x cannot be allocated; nothing is written then.
 */
int gemm_bf16(const uint16_t *x, int64_t m, int64_t k, const uint16_t *w, const uint16_t *w3, const uint16_t *bias,
              int64_t n, uint16_t *y);

#endif

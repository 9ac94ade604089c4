// Elementwise math on 16 fp32 lanes (AVX-512) shared by the kernels of libmonostream_cpu.so.
#ifndef MONOSTREAM_CPU_VECTOR_MATH_H
#define MONOSTREAM_CPU_VECTOR_MATH_H

#include <immintrin.h>

/**
 * e^x for 16 lanes: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r (Cephes' expf
 * coefficients, within 2 ulp of the true value) scaled by 2^n. Overflows to +inf; below -104
 * (e^-inf included, as masked attention scores are) it is exactly 0.
 */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) __m512 exp16(__m512 x) {
    const __mmask16 nonzero = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-104.0f), _CMP_GT_OQ);
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(89.0f)), _mm512_set1_ps(-104.0f));
    const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps(nonzero, _mm512_scalef_ps(p, n));
}

#endif

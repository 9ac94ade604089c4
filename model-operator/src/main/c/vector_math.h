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

/** 16 BF16 values widened to fp32: exact, a BF16 value being the upper half of its fp32 value. */
__attribute__((target("avx512f")))
static inline __attribute__((always_inline)) __m512 widen16(__m256i bf16) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

/** x rounded to BF16 and back, lane by lane, with the rounding and NaN rule of f32_to_bf16. */
__attribute__((target("avx512f,avx512bw")))
static inline __attribute__((always_inline)) __m512 round16(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), lsb));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    r = _mm512_mask_or_epi32(r, nan, bits, _mm512_set1_epi32(0x400000));
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32((int) 0xffff0000u)));
}

#endif

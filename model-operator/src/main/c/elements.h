// Element conversions shared by the kernels of libmonostream_cpu.so.
#ifndef MONOSTREAM_CPU_ELEMENTS_H
#define MONOSTREAM_CPU_ELEMENTS_H

#include <stdint.h>
#include <string.h>

#include "monostream_cpu.h"

static inline float bf16_to_f32(uint16_t v) {
    uint32_t bits = (uint32_t) v << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    const uint32_t nearest_even = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (bits >> 16) | 0x40u; // sign kept
    // a select rather than a branch, so loops over it vectorise
    return (uint16_t) ((bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : nearest_even);
}

/** Element i of an array of dtype, as fp32. */
static inline float load_elem(const void *base, int64_t i, int dtype) {
    return dtype == MS_BF16 ? bf16_to_f32(((const uint16_t *) base)[i]) : ((const float *) base)[i];
}

/** Stores v as element i of an array of dtype (rounded to nearest even for BF16). */
static inline void store_elem(void *base, int64_t i, float v, int dtype) {
    if (dtype == MS_BF16) {
        ((uint16_t *) base)[i] = f32_to_bf16(v);
    } else {
        ((float *) base)[i] = v;
    }
}

/** v rounded to dtype and back: what a libtorch op of that dtype would have stored. */
static inline float round_to(float v, int dtype) {
    return dtype == MS_BF16 ? bf16_to_f32(f32_to_bf16(v)) : v;
}

/**
 * silu(round(a)) rounded, times round(b), in fp32 (the caller rounds the result): an FFN
 * expert's gate from the sums a = x·w1 and b = x·w3, as three libtorch ops of dtype would round.
 */
static inline float swiglu(float a, float b, int dtype) {
    const float gate = round_to(a, dtype);
    return round_to(gate / (1.0f + __builtin_expf(-gate)), dtype) * round_to(b, dtype);
}

static inline int valid_dtype(int dtype) {
    return dtype == MS_F32 || dtype == MS_BF16;
}

#endif

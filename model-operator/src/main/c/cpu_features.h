// What the CPU running libmonostream_cpu.so can do, asked once per use by the kernels that need it.
#ifndef MONOSTREAM_CPU_FEATURES_H
#define MONOSTREAM_CPU_FEATURES_H

/** AVX512-BF16 (vdpbf16ps, vcvtneps2bf16) with the AVX512BW loads the BF16 kernels use. */
static inline int cpu_has_avx512bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
}

/** AVX-512 Foundation with AVX512BW and VL, what the F32 products of gemm.c and decode attention need. */
static inline int cpu_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vl");
}

/** AMX-BF16 tiles, enabled by the OS: libtorch's oneDNN multiplies BF16 on them. */
static inline int cpu_has_amx_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("amx-bf16") && __builtin_cpu_supports("amx-tile");
}

/** Whether ms_cpu_prefer_portable asked for the portable loops (tests); kept in linear.c. */
int cpu_prefer_portable(void);

/**
 * Whether BF16 kernels use AVX512-BF16 dot products: the CPU has them, and neither
 * ms_cpu_prefer_portable nor ms_cpu_prefer_wide (tests) asked otherwise; else the kernels that
 * widen BF16 to fp32 run where the CPU has AVX-512. Kept in linear.c.
 */
int cpu_bf16_dot_products(void);

#endif

package io.monostream.model;

import io.monostream.torch.CpuKernels;
import io.monostream.torch.Device;

/**
 * How {@link MonoInternVL} is loaded and run.
 *
 * @param precision element type of weights, activations and KV cache (spec §6 "Numerics")
 * @param prepackLinears reorder every linear weight once for oneDNN; off keeps plain weights, which
 *     decode multiplies through {@link CpuKernels} at close to the read bandwidth and prefill
 *     through its blocked product where {@link CpuKernels#takesManyRows(io.monostream.torch.DType)}
 *     (else libtorch). The default is plain where {@link CpuKernels#keepsPlainWeights}: BF16 and
 *     F32 on AVX-512 CPUs, where the blocked product beats oneDNN's prepacked GEMM (F32 205-215
 *     against 160-190 GFLOP/s on two cores; BF16 without AVX512-BF16 at about the F32 rate, where
 *     libtorch's BF16 matmul reached a fifth of it) and the one-call decode step beats its GEMV;
 *     and BF16 on AMX-BF16 CPUs, whose prefill products libtorch multiplies on the tiles from plain
 *     weights. Elsewhere weights stay prepacked: oneDNN's prepacked FP32 products are 15-25 %
 *     faster for prefill than plain ones through libtorch. CPU only: on CUDA the weights stay plain.
 * @param fusedAttention attention through {@code aten::scaled_dot_product_attention}; off runs
 *     scores, softmax and P·V as separate ops, for comparison
 * @param device where weights, KV caches and activations live (checked with {@link Device#parse})
 */
public record ModelOptions(Precision precision, boolean prepackLinears, boolean fusedAttention, Device device) {
    public ModelOptions {
        java.util.Objects.requireNonNull(precision, "precision");
        java.util.Objects.requireNonNull(device, "device");
    }

    /** On the CPU. */
    public ModelOptions(Precision precision, boolean prepackLinears, boolean fusedAttention) {
        this(precision, prepackLinears, fusedAttention, Device.CPU);
    }

    /** The fast defaults (plain weights with the decode kernel, or prepacked; fused attention) in {@code precision} on the CPU. */
    public static ModelOptions of(Precision precision) {
        return of(precision, Device.CPU);
    }

    /** The fast defaults in {@code precision} on {@code device}. */
    public static ModelOptions of(Precision precision, Device device) {
        boolean prepack = device.type() == Device.Type.CPU
                && CpuKernels.get().map(k -> !k.keepsPlainWeights(precision.dtype())).orElse(true);
        return new ModelOptions(precision, prepack, true, device);
    }
}

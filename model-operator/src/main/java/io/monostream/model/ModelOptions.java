package io.monostream.model;

import io.monostream.torch.CpuKernels;
import io.monostream.torch.Device;

/**
 * How {@link MonoInternVL} is loaded and run.
 *
 * @param precision element type of weights, activations and KV cache (spec §6 "Numerics")
 * @param prepackLinears reorder every linear weight once for oneDNN; off keeps plain weights, which
 *     decode multiplies through {@link CpuKernels} at close to the read bandwidth (prefill runs
 *     through libtorch either way). The default is plain for BF16 when those kernels load, and
 *     prepacked otherwise: oneDNN's prepacked FP32 products already stream at about the kernel's
 *     rate for one row and are 2-3x faster for a batch of rows and for prefill, while its BF16
 *     ones reach only 55-75 % of the bandwidth on one row (measured on an AVX512-BF16 CPU without
 *     AMX). CPU only: on CUDA the weights stay plain.
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
        boolean prepack = device.type() == Device.Type.CPU && (precision == Precision.F32 || CpuKernels.get().isEmpty());
        return new ModelOptions(precision, prepack, true, device);
    }
}

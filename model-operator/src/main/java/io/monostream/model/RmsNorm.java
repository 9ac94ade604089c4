package io.monostream.model;

import ai.djl.ndarray.NDArray;
import io.monostream.torch.Aten;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.Tensor;

/**
 * RMS(x, w) = w · round(x32 / sqrt(mean(x32²) + eps)) over the last axis (spec §6): the
 * statistics and the scaling run in fp32, the result is rounded to the weight's precision
 * before the weight multiply. On the CPU one call to {@link CpuKernels#rmsNorm} does it all; the
 * libtorch ops below are the path elsewhere (and the reference the kernel is tested against).
 */
final class RmsNorm {
    private final NDArray weight;
    private final float eps;
    private final Precision precision;
    private final CpuKernels kernel;     // null: libtorch ops
    private final Tensor weightTensor;   // the weight's storage, for the kernel

    RmsNorm(NDArray weight, double eps, Precision precision) {
        this.weight = weight;
        this.eps = (float) eps;
        this.precision = precision;
        this.kernel = weight.getDevice().isGpu() ? null : CpuKernels.get().orElse(null);
        if (kernel != null) {
            weightTensor = Aten.wrap(weight);
            weight.getManager().attachInternal(java.util.UUID.randomUUID().toString(), weightTensor);
        } else {
            weightTensor = null;
        }
    }

    /** The weight [H] as the kernels read it (owned by the model), or null when they do not run this norm. */
    Tensor kernelWeight() {
        return weightTensor;
    }

    float eps() {
        return eps;
    }

    NDArray forward(NDArray x) {
        if (kernel != null) {
            try (Tensor xt = Aten.wrap(x)) {
                if (kernel.handlesRmsNorm(xt, weightTensor)) {
                    try (Tensor y = kernel.rmsNorm(xt, weightTensor, eps)) {
                        return y.toNDArray(x.getManager());
                    }
                }
            }
        }
        return reference(x);
    }

    /** The libtorch ops (DecodePathsTest holds the kernel to them). */
    NDArray reference(NDArray x) {
        NDArray x32 = Precision.widen(x);
        NDArray variance = x32.square().mean(new int[] {-1}, true);
        return precision.round(x32.div(variance.add(eps).sqrt())).mul(weight);
    }
}

package io.monostream.model;

import ai.djl.ndarray.NDArray;

/**
 * RMS(x, w) = w · round(x32 / sqrt(mean(x32²) + eps)) over the last axis (spec §6): the
 * statistics and the scaling run in fp32, the result is rounded to the weight's precision
 * before the weight multiply.
 */
final class RmsNorm {
    private final NDArray weight;
    private final float eps;
    private final Precision precision;

    RmsNorm(NDArray weight, double eps, Precision precision) {
        this.weight = weight;
        this.eps = (float) eps;
        this.precision = precision;
    }

    NDArray forward(NDArray x) {
        NDArray x32 = Precision.widen(x);
        NDArray variance = x32.square().mean(new int[] {-1}, true);
        return precision.round(x32.div(variance.add(eps).sqrt())).mul(weight);
    }
}

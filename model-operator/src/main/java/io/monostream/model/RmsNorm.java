package io.monostream.model;

import ai.djl.ndarray.NDArray;

/** RMSNorm(x, w) = w · x / sqrt(mean(x²) + eps) over the last axis (spec §6). */
final class RmsNorm {
    private final NDArray weight;
    private final float eps;

    RmsNorm(NDArray weight, double eps) {
        this.weight = weight;
        this.eps = (float) eps;
    }

    NDArray forward(NDArray x) {
        NDArray variance = x.square().mean(new int[] {-1}, true);
        return x.div(variance.add(eps).sqrt()).mul(weight);
    }
}

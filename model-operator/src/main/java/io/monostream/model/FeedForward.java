package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import ai.djl.nn.core.Linear;

/** One SwiGLU expert: FFN(x) = w2(silu(w1 x) ⊙ w3 x) (spec §6). */
final class FeedForward {
    private final NDArray w1;
    private final NDArray w2;
    private final NDArray w3;

    FeedForward(NDArray w1, NDArray w2, NDArray w3) {
        this.w1 = w1;
        this.w2 = w2;
        this.w3 = w3;
    }

    static FeedForward load(WeightLoader weights, String prefix) {
        return new FeedForward(
                weights.load(prefix + ".w1.weight"), weights.load(prefix + ".w2.weight"), weights.load(prefix + ".w3.weight"));
    }

    NDArray forward(NDArray x) {
        NDArray gate = Activation.swish(Linear.linear(x, w1).singletonOrThrow(), 1f);
        NDArray up = Linear.linear(x, w3).singletonOrThrow();
        return Linear.linear(gate.mul(up), w2).singletonOrThrow();
    }

    /** Floating-point operations for {@code rows} tokens (2 per multiply-add). */
    long flops(long rows) {
        long in = w1.getShape().get(1);
        long inter = w1.getShape().get(0);
        return 2 * rows * 3 * in * inter;
    }
}

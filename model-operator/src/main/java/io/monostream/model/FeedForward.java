package io.monostream.model;

import ai.djl.ndarray.NDArray;
import io.monostream.torch.Aten;

/** One SwiGLU expert: FFN(x) = w2(silu(w1 x) ⊙ w3 x) (spec §6). */
final class FeedForward {
    private final Projection w1;
    private final Projection w2;
    private final Projection w3;

    private FeedForward(Projection w1, Projection w2, Projection w3) {
        this.w1 = w1;
        this.w2 = w2;
        this.w3 = w3;
    }

    /** An expert over DJL weights [I, H], [H, I], [I, H], prepacked into their manager. */
    FeedForward(NDArray w1, NDArray w2, NDArray w3) {
        this(Projection.of(w1), Projection.of(w2), Projection.of(w3));
    }

    static FeedForward load(WeightLoader weights, String prefix) {
        return new FeedForward(weights.linear(prefix + ".w1.weight", null), weights.linear(prefix + ".w2.weight", null),
                weights.linear(prefix + ".w3.weight", null));
    }

    NDArray forward(NDArray x) {
        NDArray gated = Projection.gated(w1, w3, x); // one kernel call for both products and the gate
        if (gated != null) {
            return w2.apply(gated);
        }
        NDArray gate = Aten.call(x.getManager(), "aten::silu", "", w1.apply(x));
        NDArray up = w3.apply(x);
        return w2.apply(gate.mul(up));
    }

    /** New handles to the plain w1, w3, w2 (the caller closes them); null entries when prepacked. */
    io.monostream.torch.Tensor[] plainWeights() {
        return new io.monostream.torch.Tensor[] {w1.plainWeight(), w3.plainWeight(), w2.plainWeight()};
    }

    Projection w1() {
        return w1;
    }

    Projection w2() {
        return w2;
    }

    Projection w3() {
        return w3;
    }

    long hidden() {
        return w1.in();
    }

    long intermediate() {
        return w1.out();
    }

    /** Floating-point operations for {@code rows} tokens (2 per multiply-add). */
    long flops(long rows) {
        return 2 * rows * 3 * w1.in() * w1.out();
    }
}

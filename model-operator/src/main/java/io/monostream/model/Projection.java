package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.core.Linear;
import io.monostream.torch.Aten;
import io.monostream.torch.PackedLinear;
import io.monostream.torch.Tensor;

import java.util.UUID;

/**
 * A linear layer {@code y = x·Wᵀ (+ b)} of the model on DJL arrays. By default the weight is
 * prepacked once for oneDNN ({@link PackedLinear}; BF16 and F32 alike), which accumulates in
 * fp32; otherwise it stays a plain array and runs through DJL's linear. The packed weight is
 * owned by the model's manager and freed with it.
 */
final class Projection {
    private final PackedLinear packed;   // null when not prepacked
    private final NDArray weight;        // null when prepacked
    private final NDArray bias;          // plain path only
    private final long out;
    private final long in;

    private Projection(PackedLinear packed, NDArray weight, NDArray bias, long out, long in) {
        this.packed = packed;
        this.weight = weight;
        this.bias = bias;
        this.out = out;
        this.in = in;
    }

    /**
     * A layer over {@code weight} [out, in] (and {@code bias} [out] or null). When prepacked, the
     * packed copy is attached to {@code owner} and the caller may close {@code weight}.
     */
    static Projection of(Tensor weight, Tensor bias, boolean prepack, NDManager owner) {
        long[] shape = weight.shape();
        if (prepack) {
            PackedLinear p = PackedLinear.of(weight, bias);
            owner.attachInternal(UUID.randomUUID().toString(), p);
            return new Projection(p, null, null, shape[0], shape[1]);
        }
        return new Projection(null, weight.toNDArray(owner), bias == null ? null : bias.toNDArray(owner),
                shape[0], shape[1]);
    }

    /** A prepacked layer over a DJL weight (tests and benchmarks build experts this way). */
    static Projection of(NDArray weight) {
        try (Tensor w = Aten.wrap(weight)) {
            return of(w, null, true, weight.getManager());
        }
    }

    /** @param x [..., in] in the weight's dtype; @return [..., out] in x's manager */
    NDArray apply(NDArray x) {
        if (packed == null) {
            return (bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias)).singletonOrThrow();
        }
        long[] shape = x.getShape().getShape();
        NDArray rows = shape.length == 2 ? x : x.reshape(-1, in);
        NDArray y;
        try (Tensor xt = Aten.wrap(rows); Tensor yt = packed.apply(xt)) {
            y = yt.toNDArray(x.getManager());
        }
        if (shape.length == 2) {
            return y;
        }
        long[] outShape = shape.clone();
        outShape[outShape.length - 1] = out;
        return y.reshape(outShape);
    }

    /** A new handle to the plain weight [out, in] (the caller closes it), or null when it is prepacked. */
    Tensor plainWeight() {
        if (packed == null) {
            return Aten.wrap(weight);
        }
        return packed.plainWeight().orElse(null);
    }

    long out() {
        return out;
    }

    long in() {
        return in;
    }
}

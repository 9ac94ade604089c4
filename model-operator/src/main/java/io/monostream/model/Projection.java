package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.core.Linear;
import io.monostream.torch.Aten;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.PackedLinear;
import io.monostream.torch.Tensor;

import java.util.UUID;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * A linear layer {@code y = x·Wᵀ (+ b)} of the model on DJL arrays, accumulating in fp32 (BF16 and
 * F32 alike). Either the weight is prepacked once for oneDNN ({@link PackedLinear}), or it stays a
 * plain array: then inputs go through {@link CpuKernels} when it takes them (a few rows without a
 * bias, streaming the weight at close to the read bandwidth; or any number of rows, with or
 * without a bias, where {@link CpuKernels#takesManyRows} the weight), and the rest through DJL's
 * linear.
 * The weights are owned by the model's manager and freed with it.
 */
final class Projection {
    private final PackedLinear packed;   // null when not prepacked
    private final NDArray weight;        // null when prepacked
    private final Tensor weightTensor;   // the plain weight's storage as a tensor, for the kernel; null when prepacked
    private final NDArray bias;          // plain path only
    private final Tensor biasTensor;     // the bias as a tensor, for the kernel; null without one
    private final CpuKernels kernel; // null: not on the CPU, or the library is missing
    private final long out;
    private final long in;

    private Projection(PackedLinear packed, NDArray weight, Tensor weightTensor, NDArray bias, Tensor biasTensor,
            CpuKernels kernel, long out, long in) {
        this.packed = packed;
        this.weight = weight;
        this.weightTensor = weightTensor;
        this.bias = bias;
        this.biasTensor = biasTensor;
        this.kernel = kernel;
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
            return new Projection(p, null, null, null, null, null, shape[0], shape[1]);
        }
        NDArray plain = weight.toNDArray(owner);
        Tensor own = Aten.wrap(plain);
        owner.attachInternal(UUID.randomUUID().toString(), own);
        NDArray plainBias = bias == null ? null : bias.toNDArray(owner);
        Tensor ownBias = null;
        if (plainBias != null) {
            ownBias = Aten.wrap(plainBias);
            owner.attachInternal(UUID.randomUUID().toString(), ownBias);
        }
        boolean onCpu = weight.device().type() == io.monostream.torch.Device.Type.CPU;
        CpuKernels k = onCpu ? CpuKernels.get().orElse(null) : null;
        return new Projection(null, plain, own, plainBias, ownBias, k, shape[0], shape[1]);
    }

    /** A prepacked layer over a DJL weight (tests and benchmarks build experts this way). */
    static Projection of(NDArray weight) {
        try (Tensor w = Aten.wrap(weight)) {
            return of(w, null, true, weight.getManager());
        }
    }

    /** @param x [..., in] in the weight's dtype; @return [..., out] in x's manager */
    NDArray apply(NDArray x) {
        if (kernel != null && ((bias == null && x.getShape().size() / in <= CpuKernels.MAX_ROWS)
                || kernel.takesManyRows(weightTensor))) {
            NDArray y = onRows(x, xt -> kernel.handlesLinear(xt, weightTensor, biasTensor),
                    xt -> kernel.linear(xt, weightTensor, biasTensor));
            if (y != null) {
                return y;
            }
        }
        if (packed == null) {
            return (bias == null ? Linear.linear(x, weight) : Linear.linear(x, weight, bias)).singletonOrThrow();
        }
        return onRows(x, xt -> true, packed::apply);
    }

    /**
     * {@code silu(gate(x)) ⊙ up(x)} in one call to {@link CpuKernels#gatedLinear}, or null when the
     * kernel does not take these layers or rows (the caller then runs the three ops).
     */
    static NDArray gated(Projection gate, Projection up, NDArray x) {
        CpuKernels k = gate.kernel;
        if (k == null || up.kernel == null || gate.bias != null || up.bias != null
                || (x.getShape().size() / gate.in > CpuKernels.MAX_ROWS && !k.takesManyRows(gate.weightTensor))) {
            return null;
        }
        return gate.onRows(x, xt -> k.handlesLinear(xt, gate.weightTensor) && k.handlesLinear(xt, up.weightTensor),
                xt -> k.gatedLinear(xt, gate.weightTensor, up.weightTensor));
    }

    /**
     * x [..., in] viewed as [rows, in] and passed to {@code product} as a tensor, the result
     * [rows, out] returned as [..., out] in x's manager; null when {@code takes} refuses the rows.
     */
    private NDArray onRows(NDArray x, Predicate<Tensor> takes, Function<Tensor, Tensor> product) {
        long[] shape = x.getShape().getShape();
        NDArray rows = shape.length == 2 ? x : x.reshape(-1, in);
        NDArray y;
        try (Tensor xt = Aten.wrap(rows)) {
            if (!takes.test(xt)) {
                return null;
            }
            try (Tensor yt = product.apply(xt)) {
                y = yt.toNDArray(x.getManager());
            }
        }
        return shape.length == 2 ? y : y.reshape(outputShape(shape));
    }

    private long[] outputShape(long[] inputShape) {
        long[] outShape = inputShape.clone();
        outShape[outShape.length - 1] = out;
        return outShape;
    }

    /**
     * The plain weight [out, in] as the decode kernels read it (owned by the model: do not close),
     * or null when this layer is prepacked, has a bias or is not on the CPU.
     */
    Tensor kernelWeight() {
        return kernel != null && bias == null ? weightTensor : null;
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

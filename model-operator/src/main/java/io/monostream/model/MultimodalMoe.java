package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import io.monostream.torch.Aten;
import io.monostream.torch.DType;
import io.monostream.torch.FusedMoeKernel;
import io.monostream.torch.Tensor;

import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The multimodal MoE of one decoder layer (spec §6, §8): token t goes through
 * {@code FFN_ve} when it is an image token and through {@code FFN} otherwise.
 *
 * <p>Each token pays for its own expert only: rows are partitioned by modality, each expert runs
 * once over its rows (one GEMM per projection), and the outputs are written back in token order.
 * A sequence of one modality skips the partition entirely. The official v1 code computes both
 * experts for every token and masks; {@link #forwardComputeBothAndMask} keeps that way for
 * comparison and benchmarks only.
 *
 * <p>On CUDA in BF16 the model may route {@link #forward} through the fused kernel of
 * {@code cuda/} instead ({@link MoeImplementation}); {@link #forwardPartitioned} stays available
 * for comparison.
 */
public final class MultimodalMoe {
    private final FeedForward text;
    private final FeedForward visual;
    private MoeImplementation implementation;       // null: partitioned, set once at load
    private FusedMoeKernel.ExpertWeights fusedWeights;

    MultimodalMoe(FeedForward text, FeedForward visual) {
        this.text = text;
        this.visual = visual;
    }

    /**
     * Routes {@link #forward} through the fused kernel of {@code implementation} when it has one.
     * The weight handles are attached to {@code owner} (the model's manager) and freed with it.
     */
    void use(MoeImplementation implementation, NDManager owner) {
        if (implementation.kernel().isEmpty()) {
            return;
        }
        Tensor[] t = text.plainWeights();
        Tensor[] v = visual.plainWeights();
        owner.attachInternal(UUID.randomUUID().toString(), () -> closeAll(t, v));
        for (Tensor w : concat(t, v)) {
            if (w == null || w.dtype() != DType.BF16 || !w.isContiguous() || w.dataPointer().address() % 16 != 0) {
                throw new IllegalStateException("fused MoE needs plain, contiguous, 16-byte aligned BF16 weights, got " + w);
            }
        }
        this.fusedWeights = new FusedMoeKernel.ExpertWeights(
                new Tensor[] {t[0], v[0]}, new Tensor[] {t[1], v[1]}, new Tensor[] {t[2], v[2]});
        this.implementation = implementation;
    }

    /** @param x [L, H] normalised hidden states; @return [L, H] */
    public NDArray forward(NDArray x, ModalityRuns runs) {
        if (implementation != null) {
            NDArray y = implementation.forward(x, runs, fusedWeights);
            if (y != null) {
                return y;
            }
        }
        return forwardPartitioned(x, runs);
    }

    /** Each expert once over its own rows, written back in token order (the implementation on any device). */
    public NDArray forwardPartitioned(NDArray x, ModalityRuns runs) {
        if (runs.allText()) {
            return text.forward(x);
        }
        if (runs.allVisual()) {
            return visual.forward(x);
        }
        NDArray textOut = text.forward(gather(x, runs, false));
        NDArray visualOut = visual.forward(gather(x, runs, true));
        // write back: walk the runs in token order, taking the next rows of the run's expert output
        NDList pieces = new NDList(runs.runs().size());
        int textAt = 0;
        int visualAt = 0;
        for (ModalityRuns.Run run : runs.runs()) {
            if (run.visual()) {
                pieces.add(visualOut.get(new NDIndex("{}:{}", visualAt, visualAt + run.length())));
                visualAt += run.length();
            } else {
                pieces.add(textOut.get(new NDIndex("{}:{}", textAt, textAt + run.length())));
                textAt += run.length();
            }
        }
        return NDArrays.concat(pieces, 0);
    }

    /** The reference way: both experts over every token, then select by mask (spec §8). */
    public NDArray forwardComputeBothAndMask(NDArray x, ModalityRuns runs) {
        NDArray textOut = text.forward(x);
        NDArray visualOut = visual.forward(x);
        float[] mask = new float[runs.length()];
        for (ModalityRuns.Run run : runs.runs()) {
            if (run.visual()) {
                java.util.Arrays.fill(mask, run.start(), run.end(), 1f);
            }
        }
        // the mask in x's dtype, so the selection runs in the model's precision
        NDArray m = Aten.cast(Aten.fromFloats(x.getManager(), mask, runs.length(), 1), Aten.dtype(x));
        return textOut.mul(m.neg().add(1f)).add(visualOut.mul(m));
    }

    /** The text expert (decode tokens are text). */
    FeedForward text() {
        return text;
    }

    /** Useful FLOPs: each token through its own expert. */
    public long flops(ModalityRuns runs) {
        return text.flops(runs.textCount()) + visual.flops(runs.visualCount());
    }

    private static Tensor[] concat(Tensor[] a, Tensor[] b) {
        Tensor[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    private static void closeAll(Tensor[] a, Tensor[] b) {
        for (Tensor w : concat(a, b)) {
            if (w != null) {
                w.close();
            }
        }
    }

    private static NDArray gather(NDArray x, ModalityRuns runs, boolean visual) {
        List<NDArray> rows = new ArrayList<>();
        for (ModalityRuns.Run run : runs.runs()) {
            if (run.visual() == visual) {
                rows.add(x.get(new NDIndex("{}:{}", run.start(), run.end())));
            }
        }
        return rows.size() == 1 ? rows.get(0) : NDArrays.concat(new NDList(rows), 0);
    }
}

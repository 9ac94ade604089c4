package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.index.NDIndex;

import java.util.ArrayList;
import java.util.List;

/**
 * The multimodal MoE of one decoder layer (spec §6, §8): token t goes through
 * {@code FFN_ve} when it is an image token and through {@code FFN} otherwise.
 *
 * <p>Each token pays for its own expert only: rows are partitioned by modality, each expert runs
 * once over its rows (one GEMM per projection), and the outputs are written back in token order.
 * A sequence of one modality skips the partition entirely. The official v1 code computes both
 * experts for every token and masks; {@link #forwardComputeBothAndMask} keeps that way for
 * comparison and benchmarks only.
 */
public final class MultimodalMoe {
    private final FeedForward text;
    private final FeedForward visual;

    MultimodalMoe(FeedForward text, FeedForward visual) {
        this.text = text;
        this.visual = visual;
    }

    /** @param x [L, H] normalised hidden states; @return [L, H] */
    public NDArray forward(NDArray x, ModalityRuns runs) {
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
        NDArray m = x.getManager().create(mask).reshape(runs.length(), 1);
        return textOut.mul(m.neg().add(1f)).add(visualOut.mul(m));
    }

    /** Useful FLOPs: each token through its own expert. */
    public long flops(ModalityRuns runs) {
        return text.flops(runs.textCount()) + visual.flops(runs.visualCount());
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

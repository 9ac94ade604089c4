package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Times the partitioned multimodal MoE against the compute-both-and-mask way on random weights,
 * in one run, so the ratio is what counts on a noisy machine. Images sit as one block in the
 * middle of the sequence, as in a real prompt.
 */
public final class MoeBenchmark {
    /** One visual fraction: median milliseconds per token both ways and the largest output difference. */
    public record Row(double visualFraction, double partitionedMsPerToken, double maskedMsPerToken, double maxAbsDiff) {
        public double ratio() {
            return partitionedMsPerToken / maskedMsPerToken;
        }
    }

    private MoeBenchmark() {}

    public static List<Row> run(NDManager parent, int hidden, int intermediate, int tokens, int iterations, double[] fractions) {
        List<Row> rows = new ArrayList<>();
        try (NDManager m = parent.newSubManager()) {
            m.getEngine().setRandomSeed(7);
            float scale = (float) (1 / Math.sqrt(hidden));
            MultimodalMoe moe = new MultimodalMoe(randomExpert(m, hidden, intermediate, scale), randomExpert(m, hidden, intermediate, scale));
            NDArray x = m.randomNormal(new Shape(tokens, hidden));
            for (double fraction : fractions) {
                int visual = (int) Math.round(tokens * fraction);
                boolean[] mask = new boolean[tokens];
                int start = (tokens - visual) / 2;
                Arrays.fill(mask, start, start + visual, true);
                ModalityRuns runs = ModalityRuns.of(mask);
                double diff;
                try (NDManager s = m.newSubManager()) {
                    NDArray xs = x.duplicate();
                    xs.attach(s);
                    diff = moe.forward(xs, runs).sub(moe.forwardComputeBothAndMask(xs, runs)).abs().max().getFloat();
                }
                double[] partitioned = new double[iterations];
                double[] masked = new double[iterations];
                for (int i = 0; i < iterations; i++) {
                    // alternate the two ways so drift in machine load hits both alike
                    partitioned[i] = time(m, x, xs -> moe.forward(xs, runs));
                    masked[i] = time(m, x, xs -> moe.forwardComputeBothAndMask(xs, runs));
                }
                rows.add(new Row(fraction, median(partitioned) / tokens, median(masked) / tokens, diff));
            }
        }
        return rows;
    }

    private static FeedForward randomExpert(NDManager m, int hidden, int intermediate, float scale) {
        return new FeedForward(
                m.randomNormal(new Shape(intermediate, hidden)).mul(scale),
                m.randomNormal(new Shape(hidden, intermediate)).mul(scale),
                m.randomNormal(new Shape(intermediate, hidden)).mul(scale));
    }

    private static double time(NDManager m, NDArray x, java.util.function.Function<NDArray, NDArray> f) {
        try (NDManager s = m.newSubManager()) {
            NDArray xs = x.duplicate();
            xs.attach(s);
            long t0 = System.nanoTime();
            NDArray out = f.apply(xs);
            out.toFloatArray(); // forces completion (and is what a caller would do)
            return (System.nanoTime() - t0) / 1e6;
        }
    }

    private static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }
}

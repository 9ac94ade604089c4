package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.torch.Device;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * Times the multimodal MoE's implementations against each other on random weights, in one run, so
 * the ratios are what count on a noisy machine: the partitioned way against compute-both-and-mask
 * on any device and dtype, and the fused kernel of {@code cuda/} when the model would run it (CUDA,
 * BF16). Images sit as one block in the middle of the sequence, as in a real prompt.
 */
public final class MoeBenchmark {
    /**
     * One visual fraction: median milliseconds per token of each way (the kernel's NaN when it does
     * not run), and the largest output differences of partitioned from compute-both-and-mask and of
     * the kernel from partitioned (NaN without the kernel).
     */
    public record Row(double visualFraction, double kernelMsPerToken, double partitionedMsPerToken,
            double maskedMsPerToken, double partitionedVsMasked, double kernelVsPartitioned) {
        /** Partitioned time over compute-both-and-mask time. */
        public double ratio() {
            return partitionedMsPerToken / maskedMsPerToken;
        }
    }

    /** The implementation the model would choose, with its reason, and one row per fraction. */
    public record Result(MoeImplementation implementation, List<Row> rows) {
        public boolean fused() {
            return implementation.kernel().isPresent();
        }
    }

    private MoeBenchmark() {}

    /**
     * Times the ways on {@code device} in {@code precision}, alternating them per iteration so drift
     * in machine load hits all alike. Each timing ends by reading one output element back to the
     * host, which waits for the device.
     */
    public static Result run(Device device, Precision precision, int hidden, int intermediate, int tokens,
            int iterations, double[] fractions) {
        List<Row> rows = new ArrayList<>();
        try (NDManager m = NDManager.newBaseManager(device.toDjl());
                MoeImplementation implementation = MoeImplementation.choose(device, precision, hidden, intermediate)) {
            m.getEngine().setRandomSeed(7);
            float scale = (float) (1 / Math.sqrt(hidden));
            MultimodalMoe moe = new MultimodalMoe(randomExpert(m, precision, hidden, intermediate, scale),
                    randomExpert(m, precision, hidden, intermediate, scale));
            moe.use(implementation, m);
            boolean fused = implementation.kernel().isPresent();
            NDArray x = precision.round(m.randomNormal(new Shape(tokens, hidden)));
            for (double fraction : fractions) {
                ModalityRuns runs = imageInTheMiddle(tokens, fraction);
                double partitionedVsMasked = largestDifference(x, xs -> moe.forwardPartitioned(xs, runs),
                        xs -> moe.forwardComputeBothAndMask(xs, runs));
                double kernelVsPartitioned = fused
                        ? largestDifference(x, xs -> moe.forward(xs, runs), xs -> moe.forwardPartitioned(xs, runs))
                        : Double.NaN;
                double[] kernel = new double[iterations];
                double[] partitioned = new double[iterations];
                double[] masked = new double[iterations];
                for (int i = 0; i < iterations; i++) {
                    kernel[i] = fused ? time(x, xs -> moe.forward(xs, runs)) : Double.NaN;
                    partitioned[i] = time(x, xs -> moe.forwardPartitioned(xs, runs));
                    masked[i] = time(x, xs -> moe.forwardComputeBothAndMask(xs, runs));
                }
                rows.add(new Row(fraction, median(kernel) / tokens, median(partitioned) / tokens,
                        median(masked) / tokens, partitionedVsMasked, kernelVsPartitioned));
            }
            return new Result(implementation, rows);
        }
    }

    /** {@code fraction} of the tokens as one image block in the middle of the sequence, as in a real prompt. */
    private static ModalityRuns imageInTheMiddle(int tokens, double fraction) {
        int visual = (int) Math.round(tokens * fraction);
        boolean[] mask = new boolean[tokens];
        int start = (tokens - visual) / 2;
        Arrays.fill(mask, start, start + visual, true);
        return ModalityRuns.of(mask);
    }

    /** An expert of random weights in {@code precision}, prepacked as a loaded model's are. */
    private static FeedForward randomExpert(NDManager m, Precision precision, int hidden, int intermediate, float scale) {
        return new FeedForward(
                precision.round(m.randomNormal(new Shape(intermediate, hidden)).mul(scale)),
                precision.round(m.randomNormal(new Shape(hidden, intermediate)).mul(scale)),
                precision.round(m.randomNormal(new Shape(intermediate, hidden)).mul(scale)));
    }

    /** The largest absolute difference of two ways' outputs, compared in fp32. */
    private static double largestDifference(NDArray x, Function<NDArray, NDArray> a, Function<NDArray, NDArray> b) {
        try (NDManager s = x.getManager().newSubManager()) {
            NDArray xs = x.duplicate();
            xs.attach(s); // outputs land in xs's manager and go with it
            return Precision.widen(a.apply(xs)).sub(Precision.widen(b.apply(xs))).abs().max().getFloat();
        }
    }

    private static double time(NDArray x, Function<NDArray, NDArray> f) {
        try (NDManager s = x.getManager().newSubManager()) {
            NDArray xs = x.duplicate();
            xs.attach(s);
            Precision.widen(xs.get(0, 0)).toFloatArray(); // the copy is done before the clock starts
            long t0 = System.nanoTime();
            NDArray out = f.apply(xs);
            // one element back to the host: waits for every launch queued on the stream before it
            Precision.widen(out.get(0, 0)).toFloatArray();
            return (System.nanoTime() - t0) / 1e6;
        }
    }

    private static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }
}

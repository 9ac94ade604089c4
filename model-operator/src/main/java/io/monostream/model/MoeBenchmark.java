package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.torch.Aten;
import io.monostream.torch.DType;
import io.monostream.torch.Device;

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

    /**
     * One visual fraction on CUDA in BF16: median milliseconds per token of the fused kernel (NaN
     * when it is unavailable), the partitioned and the compute-both-and-mask ways, and the largest
     * difference of the kernel's output from the partitioned one.
     */
    public record CudaRow(double visualFraction, double kernelMsPerToken, double partitionedMsPerToken,
            double maskedMsPerToken, double maxAbsDiff) {}

    /** The kernel's availability and one row per fraction. */
    public record CudaResult(MoeImplementation implementation, List<CudaRow> rows) {}

    private MoeBenchmark() {}

    /**
     * Times kernel, partitioned and compute-both-and-mask on {@code device} (CUDA) in BF16, on random
     * weights, alternating the three ways per iteration. Each timing ends by reading one output
     * element back to the host, which waits for the device.
     */
    public static CudaResult runOnCuda(Device device, int hidden, int intermediate, int tokens, int iterations,
            double[] fractions) {
        List<CudaRow> rows = new ArrayList<>();
        try (NDManager m = NDManager.newBaseManager(device.toDjl());
                MoeImplementation implementation = MoeImplementation.choose(device, Precision.BF16, hidden, intermediate)) {
            m.getEngine().setRandomSeed(7);
            float scale = (float) (1 / Math.sqrt(hidden));
            MultimodalMoe moe = new MultimodalMoe(randomBf16Expert(m, hidden, intermediate, scale),
                    randomBf16Expert(m, hidden, intermediate, scale));
            moe.use(implementation, m);
            boolean fused = implementation.kernel().isPresent();
            NDArray x = Aten.cast(m.randomNormal(new Shape(tokens, hidden)), DType.BF16);
            for (double fraction : fractions) {
                ModalityRuns runs = imageInTheMiddle(tokens, fraction);
                double diff = Double.NaN;
                if (fused) {
                    try (NDManager s = m.newSubManager()) {
                        NDArray xs = x.duplicate();
                        xs.attach(s); // outputs land in xs's manager and go with it
                        diff = Precision.widen(moe.forward(xs, runs)).sub(Precision.widen(moe.forwardPartitioned(xs, runs)))
                                .abs().max().getFloat();
                    }
                }
                double[] kernel = new double[iterations];
                double[] partitioned = new double[iterations];
                double[] masked = new double[iterations];
                for (int i = 0; i < iterations; i++) {
                    kernel[i] = fused ? timeOnDevice(m, x, xs -> moe.forward(xs, runs)) : Double.NaN;
                    partitioned[i] = timeOnDevice(m, x, xs -> moe.forwardPartitioned(xs, runs));
                    masked[i] = timeOnDevice(m, x, xs -> moe.forwardComputeBothAndMask(xs, runs));
                }
                rows.add(new CudaRow(fraction, median(kernel) / tokens, median(partitioned) / tokens,
                        median(masked) / tokens, diff));
            }
            return new CudaResult(implementation, rows);
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

    private static FeedForward randomBf16Expert(NDManager m, int hidden, int intermediate, float scale) {
        return new FeedForward(
                Aten.cast(m.randomNormal(new Shape(intermediate, hidden)).mul(scale), DType.BF16),
                Aten.cast(m.randomNormal(new Shape(hidden, intermediate)).mul(scale), DType.BF16),
                Aten.cast(m.randomNormal(new Shape(intermediate, hidden)).mul(scale), DType.BF16));
    }

    private static double timeOnDevice(NDManager m, NDArray x, java.util.function.Function<NDArray, NDArray> f) {
        try (NDManager s = m.newSubManager()) {
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

    public static List<Row> run(NDManager parent, int hidden, int intermediate, int tokens, int iterations, double[] fractions) {
        List<Row> rows = new ArrayList<>();
        try (NDManager m = parent.newSubManager()) {
            m.getEngine().setRandomSeed(7);
            float scale = (float) (1 / Math.sqrt(hidden));
            MultimodalMoe moe = new MultimodalMoe(randomExpert(m, hidden, intermediate, scale), randomExpert(m, hidden, intermediate, scale));
            NDArray x = m.randomNormal(new Shape(tokens, hidden));
            for (double fraction : fractions) {
                ModalityRuns runs = imageInTheMiddle(tokens, fraction);
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

package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CPU kernels against double-precision references computed here from the very same
 * operand values: the linear products over shapes that exercise every tail (K not a multiple of
 * the vector width, N not a multiple of the thread share, M across the 4/2/1 row groups), both
 * element types, both BF16 loops and several thread counts; the gated product, RMSNorm and
 * decode attention (rotary, cache write, softmax) likewise.
 */
class CpuKernelsTest {

    private static final int[] ROWS = {1, 2, 3, 4, 5, 7, 8, 16};
    private static final int[][] WEIGHTS = {{1, 1}, {17, 31}, {64, 64}, {300, 1000}, {257, 1024}, {96, 33}};

    private CpuKernels kernel;
    private boolean bf16ManyRowsThroughLibtorch; // the process's setting, restored after each test

    @BeforeEach
    void kernel() {
        assumeTrue("Linux".equals(System.getProperty("os.name")) && "amd64".equals(System.getProperty("os.arch")),
                "the kernel is built for Linux x86-64 only");
        CpuKernels.Availability a = CpuKernels.availability();
        assertTrue(a.kernel().isPresent(), "the build puts the kernel in the jar on Linux x86-64: " + a.description());
        kernel = a.kernel().get();
        // these tests are about the kernels' own products, which AMX-BF16 CPUs leave to libtorch in BF16
        bf16ManyRowsThroughLibtorch = kernel.bf16ManyRowsThroughLibtorch(false);
    }

    @AfterEach
    void restore() {
        if (kernel != null) {
            kernel.preferPortable(false);
            kernel.preferWide(false);
            kernel.bf16ManyRowsThroughLibtorch(bf16ManyRowsThroughLibtorch);
            kernel.threads(TorchThreads.current());
        }
    }

    /** A tensor of standard normal values (fp32, then cast to {@code dtype}), the same for a seed. */
    static Tensor random(long seed, DType dtype, long... shape) {
        Random r = new Random(seed);
        float[] v = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        try (Tensor t = Tensor.of(v, shape)) {
            return t.to(dtype);
        }
    }

    /**
     * Checks y = x·wᵀ element by element against a double product of the operands' own values.
     * fp32 accumulation of K terms errs by at most about K·2⁻²⁴·Σ|w·x|; a BF16 result adds one
     * rounding, 2⁻⁹ of |y|.
     */
    private static void assertProduct(Tensor x, Tensor w, Tensor y) {
        assertProduct(x, w, null, y);
    }

    /** As {@link #assertProduct(Tensor, Tensor, Tensor)}, plus {@code bias} [n] when not null. */
    private static void assertProduct(Tensor x, Tensor w, Tensor bias, Tensor y) {
        int m = (int) x.shape()[0];
        int k = (int) x.shape()[1];
        int n = (int) w.shape()[0];
        assertArrayEquals(new long[] {m, n}, y.shape());
        assertEquals(w.dtype(), y.dtype());
        float[] xv = x.toFloatArray();
        float[] wv = w.toFloatArray();
        float[] yv = y.toFloatArray();
        float[] bv = bias == null ? new float[n] : bias.toFloatArray();
        double rounding = y.dtype() == DType.BF16 ? Math.scalb(1.0, -8) : 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double exact = bv[j];
                double magnitude = Math.abs(bv[j]);
                for (int c = 0; c < k; c++) {
                    double p = (double) xv[i * k + c] * wv[j * k + c];
                    exact += p;
                    magnitude += Math.abs(p);
                }
                double bound = rounding * Math.abs(exact) + 2.0 * k * Math.scalb(1.0, -24) * magnitude + 1e-30;
                double got = yv[i * n + j];
                if (!(Math.abs(got - exact) <= bound)) {
                    throw new AssertionError(String.format("y[%d,%d] of [%d,%d]x[%d,%d] %s: %g, exact %g, bound %g",
                            i, j, m, k, n, k, y.dtype(), got, exact, bound));
                }
            }
        }
    }

    private void checkAllShapes(DType dtype, int threads) {
        kernel.threads(threads);
        long seed = 1;
        for (int[] wShape : WEIGHTS) {
            for (int m : ROWS) {
                try (Tensor x = random(seed++, dtype, m, wShape[1]); Tensor w = random(seed++, dtype, wShape[0], wShape[1]);
                     Tensor y = kernel.linear(x, w)) {
                    assertProduct(x, w, y);
                }
            }
        }
    }

    @Test
    void bf16MatchesTheExactProductOnEveryTail() {
        checkAllShapes(DType.BF16, 2);
    }

    @Test
    void bf16PortableLoopMatchesTheExactProduct() {
        kernel.preferPortable(true);
        checkAllShapes(DType.BF16, 2);
    }

    @Test
    void f32MatchesTheExactProductOnEveryTail() {
        checkAllShapes(DType.F32, 2);
    }

    @Test
    void threadCountsOneToFiveGiveTheSameBits() {
        try (Tensor x = random(7, DType.BF16, 3, 1000); Tensor w = random(8, DType.BF16, 1001, 1000)) {
            kernel.threads(1);
            float[] one;
            try (Tensor y = kernel.linear(x, w)) {
                assertProduct(x, w, y);
                one = y.toFloatArray();
            }
            for (int t = 2; t <= 5; t++) {
                kernel.threads(t);
                try (Tensor y = kernel.linear(x, w)) {
                    assertArrayEquals(one, y.toFloatArray(), "threads " + t); // rows are split, never a sum
                }
            }
        }
    }

    /**
     * Each row of X gets the same bits whatever rows share its call (the loops sum every row the
     * same way for any batch, long rows included), so a sequence's logits do not depend on the
     * batch it decodes in: 16 and 8 rows against each row alone, both loops, both dtypes.
     */
    @Test
    void aRowsProductDoesNotDependOnTheOtherRowsInTheCall() {
        int[][] shapes = {{16, 1024, 300}, {8, 4096, 130}, {5, 1000, 64}};
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            for (boolean portable : new boolean[] {false, true}) {
                kernel.preferPortable(portable);
                for (int[] shape : shapes) {
                    int m = shape[0];
                    int k = shape[1];
                    try (Tensor x = random(90 + m, dtype, m, k); Tensor w = random(91 + m, dtype, shape[2], k);
                         Tensor all = kernel.linear(x, w)) {
                        float[] together = all.toFloatArray();
                        float[] xs = x.toFloatArray();
                        for (int r = 0; r < m; r++) {
                            try (Tensor row = Tensor.of(java.util.Arrays.copyOfRange(xs, r * k, (r + 1) * k), 1, k);
                                 Tensor rowT = row.to(dtype); Tensor alone = kernel.linear(rowT, w)) {
                                assertArrayEquals(alone.toFloatArray(), java.util.Arrays.copyOfRange(together,
                                        r * shape[2], (r + 1) * shape[2]), dtype + (portable ? " portable" : "")
                                        + " row " + r + " of " + m + " x " + k);
                            }
                        }
                    }
                }
            }
        }
    }

    /** Prefill's many rows (the blocked product of gemm.c), both dtypes: every tail of tokens and weight rows. */
    @Test
    void manyRowsMatchTheExactProduct() {
        assumeTrue(kernel.takesManyRows(DType.BF16) || kernel.takesManyRows(DType.F32),
                "many rows need AVX-512; this CPU runs " + kernel.isa());
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            if (kernel.takesManyRows(dtype)) { // else this CPU leaves many rows of this dtype to libtorch
                checkManyRows(dtype);
            }
        }
    }

    private void checkManyRows(DType dtype) {
        int[][] weights = {{1, 2}, {7, 64}, {13, 1000}, {100, 1024}};
        long seed = 500;
        for (int threads : new int[] {1, 2, 3}) {
            kernel.threads(threads);
            for (int[] wShape : weights) {
                for (int m : new int[] {17, 31, 64, 65, 130, 300}) {
                    try (Tensor x = random(seed++, dtype, m, wShape[1]);
                         Tensor w = random(seed++, dtype, wShape[0], wShape[1]); Tensor y = kernel.linear(x, w)) {
                        assertProduct(x, w, y);
                    }
                }
            }
        }
    }

    /**
     * A prompt of many passes (256 tokens each) whose items the threads take in any order, with
     * the next pass packed while the last one is multiplied: every run gives the exact product's
     * bits, including small weights whose items finish faster than the packing of the next pass.
     */
    @Test
    void productsOverManyPassesGiveTheSameBitsOnEveryRun() {
        assumeTrue(kernel.takesManyRows(DType.BF16) || kernel.takesManyRows(DType.F32),
                "many rows need AVX-512; this CPU runs " + kernel.isa());
        int[][] shapes = {{1891, 34, 64}, {1891, 96, 7}, {700, 64, 192}}; // {m, k, n}
        long seed = 900;
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            if (!kernel.takesManyRows(dtype)) {
                continue;
            }
            for (int[] s : shapes) {
                try (Tensor x = random(seed++, dtype, s[0], s[1]); Tensor w = random(seed++, dtype, s[2], s[1]);
                     Tensor w3 = random(seed++, dtype, s[2], s[1])) {
                    float[] plain;
                    float[] gated;
                    kernel.threads(1);
                    try (Tensor y = kernel.linear(x, w); Tensor g = kernel.gatedLinear(x, w, w3)) {
                        assertProduct(x, w, y);
                        plain = y.toFloatArray();
                        gated = g.toFloatArray();
                    }
                    for (int run = 0; run < 40; run++) {
                        kernel.threads(2 + run % 2);
                        try (Tensor y = kernel.linear(x, w); Tensor g = kernel.gatedLinear(x, w, w3)) {
                            assertArrayEquals(plain, y.toFloatArray(), dtype + " " + java.util.Arrays.toString(s) + " run " + run);
                            assertArrayEquals(gated, g.toFloatArray(), dtype + " gated " + java.util.Arrays.toString(s) + " run " + run);
                        }
                    }
                }
            }
        }
    }

    /** A bias is added to each row's sums before the one (BF16) rounding, for any number of rows. */
    @Test
    void productWithABiasMatchesTheExactSum() {
        assumeTrue(kernel.takesManyRows(DType.BF16) || kernel.takesManyRows(DType.F32),
                "many rows need AVX-512; this CPU runs " + kernel.isa());
        long seed = 700;
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            if (!kernel.takesManyRows(dtype)) {
                continue;
            }
            for (int[] wShape : new int[][] {{1, 2}, {13, 588}, {100, 1024}}) {
                for (int m : new int[] {1, 5, 17, 300}) {
                    try (Tensor x = random(seed++, dtype, m, wShape[1]);
                         Tensor w = random(seed++, dtype, wShape[0], wShape[1]);
                         Tensor b = random(seed++, dtype, wShape[0]); Tensor y = kernel.linear(x, w, b)) {
                        assertProduct(x, w, b, y);
                    }
                }
            }
        }
        assumeTrue(kernel.takesManyRows(DType.BF16), "BF16 refusals need AVX-512; this CPU runs " + kernel.isa());
        try (Tensor x = random(1, DType.BF16, 20, 64); Tensor w = random(2, DType.BF16, 8, 64);
             Tensor b = random(3, DType.BF16, 7); Tensor b32 = random(4, DType.F32, 8)) {
            assertFalse(kernel.handlesLinear(x, w, b), "a bias of the wrong length");
            assertFalse(kernel.handlesLinear(x, w, b32), "an F32 bias on BF16 operands");
        }
    }

    /**
     * The many-row product sums each row the same way whatever rows share its call and however
     * many threads split it, so a prompt's tokens do not depend on what else is in its batch.
     */
    @Test
    void manyRowsDoNotDependOnTheOtherRowsOrTheThreads() {
        assumeTrue(kernel.takesManyRows(DType.BF16) || kernel.takesManyRows(DType.F32),
                "many rows need AVX-512; this CPU runs " + kernel.isa());
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            if (!kernel.takesManyRows(dtype)) {
                continue;
            }
            try (Tensor x = random(600, dtype, 300, 1024); Tensor w = random(601, dtype, 131, 1024);
                 Tensor first = Tensor.of(java.util.Arrays.copyOfRange(x.toFloatArray(), 0, 40 * 1024), 40, 1024);
                 Tensor firstRows = first.to(dtype)) {
                kernel.threads(2);
                float[] all;
                try (Tensor y = kernel.linear(x, w)) {
                    all = y.toFloatArray();
                }
                try (Tensor y = kernel.linear(firstRows, w)) {
                    assertArrayEquals(java.util.Arrays.copyOfRange(all, 0, 40 * 131), y.toFloatArray(),
                            dtype + ": 40 of 300 rows");
                }
                for (int t : new int[] {1, 3}) {
                    kernel.threads(t);
                    try (Tensor y = kernel.linear(x, w)) {
                        assertArrayEquals(all, y.toFloatArray(), dtype + ": threads " + t);
                    }
                }
            }
        }
    }

    @Test
    void agreesWithLibtorchLinear() {
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            try (Tensor x = random(11, dtype, 4, 512); Tensor w = random(12, dtype, 384, 512);
                 Tensor mine = kernel.linear(x, w); Tensor theirs = Dispatcher.call("aten::linear", "", x, w, null)) {
                float[] a = mine.toFloatArray();
                float[] b = theirs.toFloatArray();
                double tolerance = dtype == DType.BF16 ? 0.02 : 1e-4; // two roundings of bf16 outputs near |y| ~ 20
                for (int i = 0; i < a.length; i++) {
                    assertEquals(b[i], a[i], tolerance * Math.max(1, Math.abs(b[i])), dtype + " element " + i);
                }
            }
        }
    }

    @Test
    void nanAndInfinityPropagate() {
        float[] xv = new float[2 * 64];
        xv[5] = Float.NaN;
        xv[64 + 3] = Float.POSITIVE_INFINITY;
        float[] wv = new float[3 * 64];
        java.util.Arrays.fill(wv, 0.5f);
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            try (Tensor x32 = Tensor.of(xv, 2, 64); Tensor w32 = Tensor.of(wv, 3, 64);
                 Tensor x = x32.to(dtype); Tensor w = w32.to(dtype); Tensor y = kernel.linear(x, w)) {
                float[] out = y.toFloatArray();
                for (int j = 0; j < 3; j++) {
                    assertTrue(Float.isNaN(out[j]), dtype + " NaN row");
                    assertEquals(Float.POSITIVE_INFINITY, out[3 + j], dtype + " infinite row");
                }
            }
        }
    }

    @Test
    void refusesWhatItDoesNotHandle() {
        try (Tensor x = random(1, DType.BF16, 17, 64); Tensor w = random(2, DType.BF16, 32, 64);
             Tensor x32 = random(3, DType.F32, 2, 64); Tensor xk = random(4, DType.BF16, 2, 63);
             Tensor square = random(5, DType.BF16, 64, 64);
             Tensor transposed = Dispatcher.call("aten::transpose", "int", square, 0L, 1L);
             Tensor f16 = random(6, DType.F16, 2, 64); Tensor w16 = random(7, DType.F16, 32, 64)) {
            assertEquals(kernel.isa().startsWith("avx512"), kernel.handlesLinear(x, w),
                    "more rows than MAX_ROWS in BF16: AVX-512 CPUs only");
            try (Tensor x17 = random(8, DType.F32, 17, 64); Tensor w32 = random(9, DType.F32, 32, 64);
                 Tensor odd = random(10, DType.BF16, 17, 63); Tensor wOdd = random(11, DType.BF16, 32, 63)) {
                assertEquals(kernel.isa().startsWith("avx512"), kernel.handlesLinear(x17, w32),
                        "more rows than MAX_ROWS in F32: AVX-512 CPUs only");
                assertFalse(kernel.handlesLinear(odd, wOdd), "more rows than MAX_ROWS in BF16 with an odd K");
            }
            assertFalse(kernel.handlesLinear(x32, w), "mixed dtypes");
            assertFalse(kernel.handlesLinear(xk, w), "K differs");
            assertFalse(kernel.handlesLinear(transposed, w), "a non-contiguous input");
            assertFalse(kernel.handlesLinear(f16, w16), "F16");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kernel.linear(x32, w));
            assertTrue(e.getMessage().contains("does not take"), e.getMessage());
        }
    }

    @Test
    void concurrentCallersEachGetTheirOwnProduct() throws Exception {
        kernel.threads(2);
        List<Callable<Void>> callers = new ArrayList<>();
        for (int c = 0; c < 6; c++) {
            long seed = 100 + c;
            callers.add(() -> {
                try (Tensor x = random(seed, DType.BF16, 2, 512); Tensor w = random(seed + 50, DType.BF16, 700, 512)) {
                    for (int i = 0; i < 20; i++) {
                        try (Tensor y = kernel.linear(x, w)) {
                            if (i % 10 == 0) {
                                assertProduct(x, w, y);
                            }
                        }
                    }
                }
                return null;
            });
        }
        ExecutorService pool = Executors.newFixedThreadPool(6);
        try {
            for (Future<Void> f : pool.invokeAll(callers)) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void gatedLinearIsSiluOfTheGateTimesTheUpProjection() {
        checkGated(DType.BF16);
        checkGated(DType.F32);
    }

    private void checkGated(DType dtype) {
        for (int m : new int[] {1, 3, 8, 40, 100}) {
            if (m > CpuKernels.MAX_ROWS && !kernel.takesManyRows(dtype)) {
                continue; // this CPU leaves many rows of this dtype to libtorch
            }
            try (Tensor x = random(20 + m, dtype, m, 200); Tensor w1 = random(30 + m, dtype, 130, 200);
                 Tensor w3 = random(40 + m, dtype, 130, 200); Tensor y = kernel.gatedLinear(x, w1, w3);
                 Tensor gate = kernel.linear(x, w1); Tensor up = kernel.linear(x, w3)) {
                float[] g = gate.toFloatArray();
                float[] u = up.toFloatArray();
                float[] got = y.toFloatArray();
                for (int i = 0; i < got.length; i++) {
                    double expected = g[i] / (1 + Math.exp(-g[i])) * u[i];
                    // BF16: the silu and the product each rounded once more (2^-8 relative each)
                    double tolerance = (dtype == DType.BF16 ? 0.008 : 1e-6) * Math.abs(expected) + 1e-6;
                    assertEquals(expected, got[i], tolerance, dtype + " m=" + m + " element " + i);
                }
            }
        }
    }

    /**
     * The BF16 kernels of AVX-512 CPUs without AVX512-BF16, which widen their operands to fp32,
     * forced on CPUs that have it too, so that every AVX-512 CPU checks them: few-row and many-row
     * products, the gated product and prefill attention against the exact results.
     */
    @Test
    void bf16KernelsThatWidenToFp32MatchTheExactResults() {
        assumeTrue(kernel.isa().startsWith("avx512"), "the widening kernels need AVX-512; this CPU runs " + kernel.isa());
        kernel.preferWide(true);
        checkAllShapes(DType.BF16, 2);
        checkManyRows(DType.BF16);
        checkGated(DType.BF16);
        checkAttentionPrefill();
    }

    @Test
    void rmsNormScalesEachRowByItsRootMeanSquare() {
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            for (long[] shape : new long[][] {{1, 1024}, {3, 5, 100}, {300, 64}}) {
                long hidden = shape[shape.length - 1];
                try (Tensor x = random(50, dtype, shape); Tensor w = random(51, dtype, hidden);
                     Tensor y = kernel.rmsNorm(x, w, 1e-6)) {
                    assertArrayEquals(shape, y.shape());
                    float[] xv = x.toFloatArray();
                    float[] wv = w.toFloatArray();
                    float[] got = y.toFloatArray();
                    for (int r = 0; r < xv.length / hidden; r++) {
                        double squares = 0;
                        for (int c = 0; c < hidden; c++) {
                            squares += (double) xv[(int) (r * hidden + c)] * xv[(int) (r * hidden + c)];
                        }
                        double scale = Math.sqrt(squares / hidden + 1e-6);
                        for (int c = 0; c < hidden; c++) {
                            int i = (int) (r * hidden + c);
                            double expected = xv[i] / scale * wv[c];
                            double tolerance = (dtype == DType.BF16 ? 0.008 : 2e-6) * Math.abs(expected) + 1e-7;
                            assertEquals(expected, got[i], tolerance, dtype + " row " + r + " column " + c);
                        }
                    }
                }
            }
        }
    }

    /** The values of an attention kernel's operands and result, read after the call (the caches as it left them). */
    private record Operands(float[] qkv, float[] cos, float[] sin, float[] keys, float[] values, float[] out) {
        static Operands of(Tensor qkv, Tensor cos, Tensor sin, Tensor keys, Tensor values, Tensor out) {
            return new Operands(qkv.toFloatArray(), cos.toFloatArray(), sin.toFloatArray(), keys.toFloatArray(),
                    values.toFloatArray(), out.toFloatArray());
        }
    }

    /** x·cos + rotate_half(x)·sin for one head of d values. */
    private static double[] rotate(float[] x, int at, float[] cos, float[] sin, int d) {
        return rotate(x, at, cos, sin, 0, d);
    }

    /** The head at x[at..] rotated with the tables' row starting at tableAt, in double. */
    private static double[] rotate(float[] x, int at, float[] cos, float[] sin, int tableAt, int d) {
        double[] out = new double[d];
        for (int i = 0; i < d; i++) {
            double other = i < d / 2 ? -x[at + i + d / 2] : x[at + i - d / 2];
            out[i] = x[at + i] * (double) cos[tableAt + i] + other * sin[tableAt + i];
        }
        return out;
    }

    @Test
    void attentionInputsRotateEveryTokenAndWriteItsKeyAndValueAfterThePast() {
        int length = 5;
        int kvHeads = 2;
        int group = 3;
        int d = 16;
        int capacity = 20;
        int past = 7;
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            try (Tensor qkv = random(70, dtype, length, kvHeads, group + 2, d); Tensor cos = random(71, dtype, length, d);
                 Tensor sin = random(72, dtype, length, d); Tensor keys = random(73, dtype, kvHeads, capacity, d);
                 Tensor values = random(74, dtype, kvHeads, capacity, d)) {
                float[] keysBefore = keys.toFloatArray();
                float[] valuesBefore = values.toFloatArray();
                try (Tensor out = kernel.attentionInputs(qkv, cos, sin, keys, values, past)) {
                    assertArrayEquals(new long[] {(long) kvHeads * group, length, d}, out.shape());
                    Operands o = Operands.of(qkv, cos, sin, keys, values, out);
                    float[] q = o.qkv(), c = o.cos(), s = o.sin(), k = o.keys(), v = o.values(), got = o.out();
                    double tolerance = dtype == DType.BF16 ? 0.03 : 1e-6;
                    for (int g = 0; g < kvHeads; g++) {
                        for (int row = 0; row < capacity; row++) {
                            int t = row - past;
                            for (int i = 0; i < d; i++) {
                                int at = (g * capacity + row) * d + i;
                                if (t < 0 || t >= length) {
                                    assertEquals(keysBefore[at], k[at], 0.0, "key row " + row + " is not the new tokens'");
                                    assertEquals(valuesBefore[at], v[at], 0.0, "value row " + row);
                                    continue;
                                }
                                int slots = t * kvHeads * (group + 2) + g * (group + 2);
                                double key = rotate(q, (slots + group) * d, c, s, t * d, d)[i];
                                assertEquals(key, k[at], tolerance * Math.max(1, Math.abs(key)), dtype + " key " + t);
                                assertEquals(q[(slots + group + 1) * d + i], v[at], 0.0, dtype + " value " + t);
                            }
                        }
                        for (int h = 0; h < group; h++) {
                            for (int t = 0; t < length; t++) {
                                int slots = t * kvHeads * (group + 2) + g * (group + 2);
                                double[] query = rotate(q, (slots + h) * d, c, s, t * d, d);
                                for (int i = 0; i < d; i++) {
                                    assertEquals(query[i], got[((g * group + h) * length + t) * d + i],
                                            tolerance * Math.max(1, Math.abs(query[i])), dtype + " query " + t);
                                }
                            }
                        }
                    }
                }
                assertThrows(IllegalArgumentException.class,
                        () -> kernel.attentionInputs(qkv, cos, sin, keys, values, capacity - length + 1));
            }
        }
    }

    /**
     * Prefill attention against softmax(q·Kᵀ/√d)·V in double over each query's visible keys: a
     * chunk after a cache (past > 0), grouped queries, a head dimension that is not a multiple of
     * 64 and lengths that are not multiples of the kernel's 16-query and 64-key blocks. The kernel
     * rounds the probabilities and its output to BF16: 1/64 of the values' scale is that.
     */
    @Test
    void attentionPrefillAttendsEachQueryToTheKeysUpToItsPosition() {
        assumeTrue(kernel.isa().startsWith("avx512"), "the prefill attention kernel needs AVX-512");
        checkAttentionPrefill();
    }

    private void checkAttentionPrefill() {
        int[][] cases = {{37, 0, 2, 2, 64}, {70, 45, 1, 3, 48}, {1, 20, 2, 1, 16}, {130, 0, 1, 1, 128}};
        long seed = 80;
        for (int[] c : cases) {
            int length = c[0];
            int past = c[1];
            int kvHeads = c[2];
            int group = c[3];
            int d = c[4];
            int heads = kvHeads * group;
            int capacity = past + length + 3;
            try (Tensor q = random(seed++, DType.BF16, heads, length, d); Tensor keys = random(seed++, DType.BF16, kvHeads, capacity, d);
                 Tensor values = random(seed++, DType.BF16, kvHeads, capacity, d)) {
                assertTrue(kernel.handlesAttentionPrefill(q, keys, values, past));
                float[] qv = q.toFloatArray();
                float[] kv = keys.toFloatArray();
                float[] vv = values.toFloatArray();
                try (Tensor out = kernel.attentionPrefill(q, keys, values, past)) {
                    assertArrayEquals(new long[] {length, (long) heads * d}, out.shape());
                    float[] got = out.toFloatArray();
                    for (int h = 0; h < heads; h++) {
                        int g = h / group;
                        for (int t = 0; t < length; t++) {
                            int visible = past + t + 1;
                            double[] p = new double[visible];
                            double max = Double.NEGATIVE_INFINITY;
                            for (int key = 0; key < visible; key++) {
                                for (int i = 0; i < d; i++) {
                                    p[key] += (double) qv[(h * length + t) * d + i] * kv[(g * capacity + key) * d + i];
                                }
                                p[key] /= Math.sqrt(d);
                                max = Math.max(max, p[key]);
                            }
                            double total = 0;
                            for (int key = 0; key < visible; key++) {
                                p[key] = Math.exp(p[key] - max);
                                total += p[key];
                            }
                            for (int i = 0; i < d; i++) {
                                double expected = 0;
                                for (int key = 0; key < visible; key++) {
                                    expected += p[key] / total * vv[(g * capacity + key) * d + i];
                                }
                                assertEquals(expected, got[(t * heads + h) * d + i], 1.0 / 64,
                                        java.util.Arrays.toString(c) + " head " + h + " query " + t + " element " + i);
                            }
                        }
                    }
                }
                assertFalse(kernel.handlesAttentionPrefill(q, keys, values, capacity - length + 1), "no room");
                assertThrows(IllegalArgumentException.class,
                        () -> kernel.attentionPrefill(q, keys, values, capacity - length + 1));
            }
        }
        try (Tensor q = random(1, DType.F32, 2, 4, 16); Tensor keys = random(2, DType.F32, 1, 8, 16);
             Tensor values = random(3, DType.F32, 1, 8, 16)) {
            assertFalse(kernel.handlesAttentionPrefill(q, keys, values, 0), "F32 stays with libtorch");
        }
        try (Tensor q = random(1, DType.BF16, 2, 4, 24); Tensor keys = random(2, DType.BF16, 1, 8, 24);
             Tensor values = random(3, DType.BF16, 1, 8, 24)) {
            assertFalse(kernel.handlesAttentionPrefill(q, keys, values, 0), "head dimension not a multiple of 16");
        }
    }

    /**
     * Decode attention against a double reference on the kernel's own cache contents, through the
     * AVX-512 heads and the portable loop, on one and two threads: head dimensions that fill
     * 16-lane vectors and ones that leave a tail (24, 200), in registers (up to 128) and beyond them
     * (200), from a first token (no past) to 300 cached rows.
     */
    @Test
    void attendDecodeRotatesWritesTheCacheAndAttendsOverEveryCachedRow() {
        int[][] cases = {{16, 29}, {24, 0}, {24, 5}, {128, 300}, {64, 17}, {200, 40}}; // {d, past}
        for (boolean portable : new boolean[] {false, true}) {
            kernel.preferPortable(portable);
            for (int threads = 1; threads <= 2; threads++) {
                kernel.threads(threads);
                for (int[] c : cases) {
                    for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                        checkAttendDecode(dtype, c[0], c[1], (portable ? "portable, " : "") + threads + " threads, d=" + c[0]
                                + ", past=" + c[1] + ", " + dtype);
                    }
                }
            }
        }
    }

    private void checkAttendDecode(DType dtype, int d, int past, String what) {
        int kvHeads = 2;
        int group = 3;
        int capacity = past + 11;
        try (Tensor qkv = random(60 + d, dtype, 1, kvHeads, group + 2, d); Tensor cos = random(61, dtype, 1, d);
             Tensor sin = random(62, dtype, 1, d); Tensor keys = random(63 + past, dtype, kvHeads, capacity, d);
             Tensor values = random(64 + past, dtype, kvHeads, capacity, d);
             Tensor out = kernel.attendDecode(qkv, cos, sin, keys, values, past)) {
            assertArrayEquals(new long[] {1, (long) kvHeads * group * d}, out.shape());
            Operands o = Operands.of(qkv, cos, sin, keys, values, out);
            float[] q = o.qkv(), c = o.cos(), s = o.sin(), k = o.keys(), v = o.values(), got = o.out();
            double tolerance = dtype == DType.BF16 ? 0.03 : 1e-5;
            for (int g = 0; g < kvHeads; g++) {
                double[] newKey = rotate(q, (g * (group + 2) + group) * d, c, s, d);
                for (int i = 0; i < d; i++) {
                    int row = (g * capacity + past) * d + i;
                    assertEquals(newKey[i], k[row], tolerance * Math.max(1, Math.abs(newKey[i])), what + ": rotated key " + i);
                    assertEquals(q[(g * (group + 2) + group + 1) * d + i], v[row], 0.0, what + ": value " + i);
                }
                for (int h = 0; h < group; h++) {
                    double[] query = rotate(q, (g * (group + 2) + h) * d, c, s, d);
                    double[] scores = new double[past + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t = 0; t <= past; t++) {
                        for (int i = 0; i < d; i++) {
                            scores[t] += query[i] * k[(g * capacity + t) * d + i];
                        }
                        scores[t] /= Math.sqrt(d);
                        max = Math.max(max, scores[t]);
                    }
                    double total = 0;
                    for (int t = 0; t <= past; t++) {
                        scores[t] = Math.exp(scores[t] - max);
                        total += scores[t];
                    }
                    for (int i = 0; i < d; i++) {
                        double expected = 0;
                        for (int t = 0; t <= past; t++) {
                            expected += scores[t] / total * v[(g * capacity + t) * d + i];
                        }
                        int head = g * group + h;
                        assertEquals(expected, got[head * d + i], tolerance * Math.max(1, Math.abs(expected)),
                                what + ": head " + head + " element " + i);
                    }
                }
            }
        }
    }

    @Test
    void attendDecodeRefusesAPositionOutsideTheCache() {
        try (Tensor qkv = random(1, DType.F32, 1, 2, 4, 8); Tensor cos = random(2, DType.F32, 1, 8);
             Tensor sin = random(3, DType.F32, 1, 8); Tensor keys = random(4, DType.F32, 2, 10, 8);
             Tensor values = random(5, DType.F32, 2, 10, 8); Tensor bf = random(6, DType.BF16, 2, 10, 8)) {
            assertThrows(IllegalArgumentException.class, () -> kernel.attendDecode(qkv, cos, sin, keys, values, 10));
            assertThrows(IllegalArgumentException.class, () -> kernel.attendDecode(qkv, cos, sin, keys, values, -1));
            assertThrows(IllegalArgumentException.class, () -> kernel.attendDecode(qkv, cos, sin, bf, values, 0));
        }
    }
}

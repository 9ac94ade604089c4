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
 * The decode-sized linear kernel against a double-precision product of the very same operand
 * values, over shapes that exercise every tail (K not a multiple of the vector width, N not a
 * multiple of the thread share, M across the 4/2/1 row groups), both element types, both BF16
 * loops and several thread counts.
 */
class CpuLinearKernelTest {

    private static final int[] ROWS = {1, 2, 3, 4, 5, 7, 8, 16};
    private static final int[][] WEIGHTS = {{1, 1}, {17, 31}, {64, 64}, {300, 1000}, {257, 1024}, {96, 33}};

    private CpuLinearKernel kernel;

    @BeforeEach
    void kernel() {
        assumeTrue("Linux".equals(System.getProperty("os.name")) && "amd64".equals(System.getProperty("os.arch")),
                "the kernel is built for Linux x86-64 only");
        CpuLinearKernel.Availability a = CpuLinearKernel.availability();
        assertTrue(a.kernel().isPresent(), "the build puts the kernel in the jar on Linux x86-64: " + a.description());
        kernel = a.kernel().get();
    }

    @AfterEach
    void restore() {
        if (kernel != null) {
            kernel.preferPortable(false);
            kernel.threads(TorchThreads.current());
        }
    }

    private static Tensor random(long seed, DType dtype, long... shape) {
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
        int m = (int) x.shape()[0];
        int k = (int) x.shape()[1];
        int n = (int) w.shape()[0];
        assertArrayEquals(new long[] {m, n}, y.shape());
        assertEquals(w.dtype(), y.dtype());
        float[] xv = x.toFloatArray();
        float[] wv = w.toFloatArray();
        float[] yv = y.toFloatArray();
        double rounding = y.dtype() == DType.BF16 ? Math.scalb(1.0, -8) : 0;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double exact = 0;
                double magnitude = 0;
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
                     Tensor y = kernel.apply(x, w)) {
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
            try (Tensor y = kernel.apply(x, w)) {
                assertProduct(x, w, y);
                one = y.toFloatArray();
            }
            for (int t = 2; t <= 5; t++) {
                kernel.threads(t);
                try (Tensor y = kernel.apply(x, w)) {
                    assertArrayEquals(one, y.toFloatArray(), "threads " + t); // rows are split, never a sum
                }
            }
        }
    }

    @Test
    void agreesWithLibtorchLinear() {
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            try (Tensor x = random(11, dtype, 4, 512); Tensor w = random(12, dtype, 384, 512);
                 Tensor mine = kernel.apply(x, w); Tensor theirs = Dispatcher.call("aten::linear", "", x, w, null)) {
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
                 Tensor x = x32.to(dtype); Tensor w = w32.to(dtype); Tensor y = kernel.apply(x, w)) {
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
            assertFalse(kernel.handles(x, w), "more rows than MAX_ROWS");
            assertFalse(kernel.handles(x32, w), "mixed dtypes");
            assertFalse(kernel.handles(xk, w), "K differs");
            assertFalse(kernel.handles(transposed, w), "a non-contiguous input");
            assertFalse(kernel.handles(f16, w16), "F16");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> kernel.apply(x32, w));
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
                        try (Tensor y = kernel.apply(x, w)) {
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
}

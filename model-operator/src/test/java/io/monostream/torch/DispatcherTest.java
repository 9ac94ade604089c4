package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Pins aten ops called by name against DJL's FP32 results or hand-computed values. */
class DispatcherTest {

    private static NDManager manager;

    @BeforeAll
    static void start() {
        manager = NDManager.newBaseManager("PyTorch");
    }

    @AfterAll
    static void stop() {
        manager.close();
    }

    private static float[] random(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    private static void assertClose(float[] expected, float[] actual, float tol) {
        assertEquals(expected.length, actual.length, "length");
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], tol * Math.max(1f, Math.abs(expected[i])), "element " + i);
        }
    }

    @Test
    void addTensorWithAndWithoutAlphaMatchesDjl() {
        float[] a = random(12, 1);
        float[] b = random(12, 2);
        NDArray da = manager.create(a, new Shape(3, 4));
        NDArray db = manager.create(b, new Shape(3, 4));
        try (Tensor ta = Tensor.of(a, 3, 4); Tensor tb = Tensor.of(b, 3, 4);
             Tensor sum = Dispatcher.call("aten::add", "Tensor", ta, tb);
             Tensor scaled = Dispatcher.call("aten::add", "Tensor", ta, tb, 0.5)) {
            assertClose(da.add(db).toFloatArray(), sum.toFloatArray(), 1e-6f);
            assertClose(da.add(db.mul(0.5f)).toFloatArray(), scaled.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void matmulLinearSiluAndMulMatchDjl() {
        float[] x = random(5 * 8, 3);
        float[] w = random(6 * 8, 4);
        float[] bias = random(6, 5);
        NDArray dx = manager.create(x, new Shape(5, 8));
        NDArray dw = manager.create(w, new Shape(6, 8));
        NDArray db = manager.create(bias, new Shape(6));
        try (Tensor tx = Tensor.of(x, 5, 8); Tensor tw = Tensor.of(w, 6, 8); Tensor tb = Tensor.of(bias, 6);
             Tensor wt = Tensor.wrap((PtNDArray) dw.transpose());
             Tensor mm = Dispatcher.call("aten::matmul", "", tx, wt);
             Tensor lin = Dispatcher.call("aten::linear", "", tx, tw, Optional.of(tb));
             Tensor linNoBias = Dispatcher.call("aten::linear", "", tx, tw, null);
             Tensor silu = Dispatcher.call("aten::silu", "", tx);
             Tensor prod = Dispatcher.call("aten::mul", "Tensor", tx, tx)) {
            NDArray expectedMm = dx.matMul(dw.transpose());
            assertArrayEquals(new long[] {5, 6}, mm.shape());
            assertClose(expectedMm.toFloatArray(), mm.toFloatArray(), 1e-5f);
            assertClose(expectedMm.add(db).toFloatArray(), lin.toFloatArray(), 1e-5f);
            assertClose(expectedMm.toFloatArray(), linNoBias.toFloatArray(), 1e-5f);
            assertClose(dx.mul(dx.getNDArrayInternal().sigmoid()).toFloatArray(), silu.toFloatArray(), 1e-6f);
            assertClose(dx.mul(dx).toFloatArray(), prod.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void indexSelectAndInPlaceIndexCopyGiveKnownValues() {
        try (Tensor src = Tensor.of(new float[] {0, 1, 2, 3, 4, 5, 6, 7, 8}, 3, 3);
             Tensor idx = Tensor.ofLongs(new long[] {2, 0}, 2);
             Tensor rows = Dispatcher.call("aten::index_select", "", src, 0L, idx)) {
            assertArrayEquals(new float[] {6, 7, 8, 0, 1, 2}, rows.toFloatArray());

            try (Tensor dst = Tensor.of(new float[9], 3, 3);
                 Tensor same = Dispatcher.call("aten::index_copy_", "", dst, 0L, idx, rows)) {
                // in place: dst itself changed; the returned handle is a second owner of it
                assertArrayEquals(new float[] {0, 1, 2, 0, 0, 0, 6, 7, 8}, dst.toFloatArray());
                assertEquals(dst.dataPointer().address(), same.dataPointer().address());
            }
        }
    }

    @Test
    void causalAttentionMatchesAnExplicitSoftmaxInF32AndBf16() {
        int b = 1, h = 2, s = 7, d = 16;
        float[] q = random(b * h * s * d, 10);
        float[] k = random(b * h * s * d, 11);
        float[] v = random(b * h * s * d, 12);
        Shape shape = new Shape(b, h, s, d);
        NDArray dq = manager.create(q, shape);
        NDArray dk = manager.create(k, shape);
        NDArray dv = manager.create(v, shape);
        NDArray scores = dq.matMul(dk.transpose(0, 1, 3, 2)).div((float) Math.sqrt(d));
        float[] maskValues = new float[s * s];
        for (int i = 0; i < s; i++) {
            for (int j = i + 1; j < s; j++) {
                maskValues[i * s + j] = -1e9f; // key j is in query i's future
            }
        }
        NDArray mask = manager.create(maskValues, new Shape(s, s));
        NDArray expected = scores.add(mask).softmax(-1).matMul(dv);

        try (Tensor tq = Tensor.of(q, b, h, s, d); Tensor tk = Tensor.of(k, b, h, s, d);
             Tensor tv = Tensor.of(v, b, h, s, d);
             Tensor out = Dispatcher.call("aten::scaled_dot_product_attention", "",
                     tq, tk, tv, null, 0.0, true, null, false);
             Tensor explicitScale = Dispatcher.call("aten::scaled_dot_product_attention", "",
                     tq, tk, tv, null, 0.0, true, Optional.of(1.0 / Math.sqrt(d)), false);
             Tensor q16 = tq.to(DType.BF16); Tensor k16 = tk.to(DType.BF16); Tensor v16 = tv.to(DType.BF16);
             Tensor out16 = Dispatcher.call("aten::scaled_dot_product_attention", "",
                     q16, k16, v16, null, 0.0, true, null, false)) {
            assertArrayEquals(new long[] {b, h, s, d}, out.shape());
            assertClose(expected.toFloatArray(), out.toFloatArray(), 1e-5f);
            assertClose(expected.toFloatArray(), explicitScale.toFloatArray(), 1e-5f);
            assertEquals(DType.BF16, out16.dtype());
            // inputs rounded to bf16 (2^-9 relative) plus bf16 output rounding: 3e-2 absolute on O(1) values
            assertClose(expected.toFloatArray(), out16.toFloatArray(), 3e-2f);
        }
    }

    @Test
    void toCopyConvertsF32ToBf16AndBack() {
        try (Tensor f = Tensor.of(new float[] {1.5f, -2f, 0.1f}, 3);
             Tensor b = Dispatcher.call("aten::_to_copy", "", f, Optional.of(DType.BF16),
                     null, null, null, false, null);
             Tensor back = Dispatcher.call("aten::_to_copy", "", b, Optional.of(DType.F32),
                     null, Optional.of(Device.CPU), null, false, Optional.of(MemoryFormat.CONTIGUOUS))) {
            assertEquals(DType.BF16, b.dtype());
            assertEquals(DType.F32, back.dtype());
            assertClose(new float[] {1.5f, -2f, 0.1f}, back.toFloatArray(), 0x1p-8f);
        }
    }

    @Test
    void multiOutputOpsReturnEveryTensorOwned() {
        long before = Tensor.liveHandles();
        try (Tensor x = Tensor.of(new float[] {3, 9, 1, 4, 2, 8}, 2, 3)) {
            List<Tensor> r = Dispatcher.callMulti("aten::max", "dim", 2, x, 1L, false);
            try (Tensor values = r.get(0); Tensor indices = r.get(1)) {
                assertArrayEquals(new float[] {9, 8}, values.toFloatArray());
                assertEquals(DType.I64, indices.dtype());
                assertArrayEquals(new long[] {1, 2},
                        indices.dataPointer().toArray(java.lang.foreign.ValueLayout.JAVA_LONG));
            }
        }
        assertEquals(before, Tensor.liveHandles());
    }

    @Test
    void aFailingOpThrowsAndLeaksNoHandle() {
        long before = Tensor.liveHandles();
        try (Tensor a = Tensor.of(new float[6], 2, 3); Tensor b = Tensor.of(new float[6], 2, 3)) {
            TorchException e = assertThrows(TorchException.class, () -> Dispatcher.call("aten::matmul", "", a, b));
            assertTrue(e.getMessage().contains("aten::matmul"), e.getMessage());
            // the caller's handles are untouched by the failed call
            assertArrayEquals(new long[] {2, 3}, a.shape());
        }
        assertEquals(before, Tensor.liveHandles());
    }

    @Test
    void inPlaceCallsChangeSelfAndReturnNoHandle() {
        long before = Tensor.liveHandles();
        try (Tensor t = Tensor.of(new float[] {1, 2, 3}, 3); Tensor two = Tensor.of(new float[] {2}, 1)) {
            Dispatcher.callInPlace("aten::mul_", "Tensor", t, two);
            assertArrayEquals(new float[] {2, 4, 6}, t.toFloatArray());
        }
        assertEquals(before, Tensor.liveHandles());
    }

    @Test
    void anUnknownOpNameIsATorchExceptionNamingIt() {
        TorchException e = assertThrows(TorchException.class,
                () -> Dispatcher.call("aten::no_such_op", "", 1L));
        assertTrue(e.getMessage().contains("aten::no_such_op"), e.getMessage());
    }

    @Test
    void unboxableArgumentsAreRefusedBeforeAnythingIsAllocated() {
        try (Tensor a = Tensor.of(new float[] {1, 2}, 2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Dispatcher.call("aten::div", "Tensor_mode", a, a, "floor"));
            assertTrue(e.getMessage().contains("argument 2"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> Dispatcher.call("aten::sum", "dim_IntList", a, new long[] {0}, false, null));
            assertThrows(IllegalArgumentException.class,
                    () -> Dispatcher.call("aten::silu", "", Optional.of(Optional.of(a))));
        }
    }

    @Test
    void djlNdListsAndBridgeTensorsInteroperate() {
        NDList list = new NDList(manager.create(new float[] {1, 2, 3}));
        try (Tensor t = Tensor.wrap((PtNDArray) list.head());
             Tensor s = Dispatcher.call("aten::silu", "", t)) {
            PtNDArray back = s.toNDArray(manager);
            assertClose(list.head().mul(list.head().getNDArrayInternal().sigmoid()).toFloatArray(),
                    back.toFloatArray(), 1e-6f);
        }
    }
}

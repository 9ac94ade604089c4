package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Pins that prepacked linear layers compute what aten::linear computes. */
class PackedLinearTest {

    private static Tensor random(long seed, long... shape) {
        Random r = new Random(seed);
        float[] v = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return Tensor.of(v, shape);
    }

    /** Max |a-b| relative to the largest |b|. */
    private static double relativeError(float[] a, float[] b) {
        double maxDiff = 0;
        double maxRef = 0;
        for (int i = 0; i < a.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
            maxRef = Math.max(maxRef, Math.abs(b[i]));
        }
        return maxDiff / maxRef;
    }

    @Test
    void bf16PrepackedMatchesPlainLinearWithAndWithoutBias() {
        try (Tensor x32 = random(1, 3, 5, 256); Tensor w32 = random(2, 96, 256); Tensor b32 = random(3, 96);
             Tensor x = x32.to(DType.BF16); Tensor w = w32.to(DType.BF16); Tensor b = b32.to(DType.BF16);
             Tensor expected = Dispatcher.call("aten::linear", "", x32, w32, Optional.of(b32));
             Tensor expectedNoBias = Dispatcher.call("aten::linear", "", x, w, null);
             PackedLinear packed = PackedLinear.of(w, b);
             PackedLinear packedNoBias = PackedLinear.of(w, null)) {
            assertTrue(packed.isPrepacked(), "this CPU's libtorch has oneDNN: prepacking must work");
            w.close(); // the packed layer does not need the caller's weight any more
            try (Tensor y = packed.apply(x); Tensor y0 = packedNoBias.apply(x)) {
                assertArrayEquals(new long[] {3, 5, 96}, y.shape());
                assertEquals(DType.BF16, y.dtype());
                // bf16 inputs/outputs keep 8 bits: ~2^-8 relative per rounding, sums of 256 terms
                // partly cancel; 2 % of the output range is a margin several times that
                assertTrue(relativeError(y.toFloatArray(), expected.toFloatArray()) < 0.02);
                // same bf16 inputs both ways: only accumulation order and output rounding differ
                assertTrue(relativeError(y0.toFloatArray(), expectedNoBias.toFloatArray()) < 0.01);
            }
        }
    }

    @Test
    void f32PrepackedMatchesPlainLinear() {
        try (Tensor x = random(4, 7, 64); Tensor w = random(5, 32, 64);
             Tensor expected = Dispatcher.call("aten::linear", "", x, w, null);
             PackedLinear packed = PackedLinear.of(w, null);
             Tensor y = packed.apply(x)) {
            assertEquals(32, packed.outFeatures());
            assertTrue(relativeError(y.toFloatArray(), expected.toFloatArray()) < 1e-5,
                    "prepacked=" + packed.isPrepacked());
        }
    }

    /**
     * Output widths that are not multiples of 64 (a vocabulary of 457, 48 rows): oneDNN's
     * prepacked F32 product is wrong there on some AVX-512 CPUs, so such a dtype must fall back to
     * aten::linear instead of computing wrong layers.
     */
    @Test
    void oddOutputWidthsMatchPlainLinearInBothDtypes() {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            for (long n : new long[] {33, 48, 457}) {
                try (Tensor x32 = random(10 + n, 16, 64); Tensor w32 = random(11 + n, n, 64);
                     Tensor x = x32.to(dtype); Tensor w = w32.to(dtype);
                     Tensor expected = Dispatcher.call("aten::linear", "", x, w, null);
                     PackedLinear layer = PackedLinear.of(w, null); Tensor y = layer.apply(x)) {
                    double limit = dtype == DType.BF16 ? 0.01 : 1e-5;
                    assertTrue(relativeError(y.toFloatArray(), expected.toFloatArray()) < limit,
                            dtype + " n=" + n + " prepacked=" + layer.isPrepacked());
                }
            }
        }
    }

    @Test
    void unsupportedDtypesFallBackToPlainLinear() {
        try (Tensor x = random(6, 2, 8); Tensor w = random(7, 4, 8);
             Tensor x64 = x.to(DType.F64); Tensor w64 = w.to(DType.F64);
             Tensor expected = Dispatcher.call("aten::linear", "", x64, w64, null);
             PackedLinear layer = PackedLinear.of(w64, null);
             Tensor y = layer.apply(x64)) {
            assertTrue(!layer.isPrepacked());
            assertArrayEquals(expected.toFloatArray(), y.toFloatArray());
        }
    }

    @Test
    void closingTheLayerReleasesItsHandles() {
        long before = Tensor.liveHandles();
        try (Tensor w32 = random(8, 16, 32); Tensor b32 = random(9, 16);
             Tensor w = w32.to(DType.BF16); Tensor b = b32.to(DType.BF16)) {
            PackedLinear layer = PackedLinear.of(w, b);
            assertEquals(before + 6, Tensor.liveHandles()); // 4 above, the packed weight, the bias
            layer.close();
            layer.close();
            assertEquals(before + 4, Tensor.liveHandles());
        }
        assertEquals(before, Tensor.liveHandles());
    }
}

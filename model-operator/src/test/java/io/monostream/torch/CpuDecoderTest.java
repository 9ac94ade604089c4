package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What {@link CpuDecoder} refuses before anything reaches native code: weights of the wrong
 * shape or dtype, a wrong number of sequences, a token outside the vocabulary, tables of the wrong
 * length, caches of the wrong shape or a position past their end. (The numbers it computes are held
 * to the layer-by-layer path in {@code DecodePathsTest}.)
 */
class CpuDecoderTest {
    private static final CpuDecoder.Dimensions DIMS = new CpuDecoder.Dimensions(16, 24, 4, 2, 4, 50, 1e-6);

    private final List<Tensor> owned = new ArrayList<>();
    private CpuKernels kernel;

    @BeforeEach
    void kernel() {
        assumeTrue("Linux".equals(System.getProperty("os.name")) && "amd64".equals(System.getProperty("os.arch")),
                "the kernel is built for Linux x86-64 only");
        kernel = CpuKernels.get().orElseThrow();
    }

    @AfterEach
    void free() {
        owned.forEach(Tensor::close);
    }

    private Tensor zeros(DType dtype, long... shape) {
        Tensor t = Tensor.empty(shape, dtype, Device.CPU);
        Dispatcher.callInPlace("aten::zero_", "", t);
        owned.add(t);
        return t;
    }

    private CpuDecoder.Layer layer(DType dtype) {
        long qkv = DIMS.kvHeads() * (DIMS.heads() / DIMS.kvHeads() + 2) * DIMS.headDim();
        return new CpuDecoder.Layer(zeros(dtype, 16), zeros(dtype, qkv, 16), zeros(dtype, 16, 16), zeros(dtype, 16),
                zeros(dtype, 24, 16), zeros(dtype, 24, 16), zeros(dtype, 16, 24));
    }

    private CpuDecoder decoder(DType dtype, int layers) {
        List<CpuDecoder.Layer> l = new ArrayList<>();
        for (int i = 0; i < layers; i++) {
            l.add(layer(dtype));
        }
        return CpuDecoder.of(kernel, DIMS, l, zeros(dtype, 50, 16), zeros(dtype, 16), zeros(dtype, 50, 16));
    }

    private CpuDecoder.Sequence sequence(DType dtype, int layers, int token, int past, int capacity) {
        Tensor[] k = new Tensor[layers];
        Tensor[] v = new Tensor[layers];
        for (int i = 0; i < layers; i++) {
            k[i] = zeros(dtype, 2, capacity, 4);
            v[i] = zeros(dtype, 2, capacity, 4);
        }
        return new CpuDecoder.Sequence(token, past, new float[4], new float[4], k, v);
    }

    private Tensor random(long seed, DType dtype, long... shape) {
        Tensor t = CpuKernelsTest.random(seed, dtype, shape);
        owned.add(t);
        return t;
    }

    /**
     * With every layer's weights zero, each layer adds nothing to the residual stream, so a step's
     * logits are head · RMSNorm(embedding of the token): the step must look the token up, keep the
     * residual through the layers, normalise with the final norm's weight and multiply by the head.
     * Checked per sequence against a double reference on the same (rounded) values.
     */
    @Test
    void aStepThroughZeroLayersIsTheHeadOfTheNormalisedEmbedding() {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            List<CpuDecoder.Layer> layers = List.of(layer(dtype), layer(dtype));
            Tensor embeddings = random(1, dtype, 50, 16);
            Tensor norm = random(2, dtype, 16);
            Tensor head = random(3, dtype, 50, 16);
            float[] e = embeddings.toFloatArray();
            float[] w = norm.toFloatArray();
            float[] h = head.toFloatArray();
            int[] tokens = {3, 49};
            try (CpuDecoder d = CpuDecoder.of(kernel, DIMS, layers, embeddings, norm, head)) {
                float[] logits = d.step(List.of(sequence(dtype, 2, tokens[0], 0, 4), sequence(dtype, 2, tokens[1], 2, 4)));
                assertEquals(2 * 50, logits.length);
                double tolerance = dtype == DType.BF16 ? 0.03 : 1e-5; // BF16: the normalised row and the logit are rounded
                for (int r = 0; r < tokens.length; r++) {
                    double squares = 0;
                    for (int i = 0; i < 16; i++) {
                        squares += (double) e[tokens[r] * 16 + i] * e[tokens[r] * 16 + i];
                    }
                    double scale = Math.sqrt(squares / 16 + DIMS.eps());
                    for (int v = 0; v < 50; v++) {
                        double expected = 0;
                        for (int i = 0; i < 16; i++) {
                            expected += h[v * 16 + i] * (w[i] * (e[tokens[r] * 16 + i] / scale));
                        }
                        assertEquals(expected, logits[r * 50 + v], tolerance * Math.max(1, Math.abs(expected)),
                                dtype + " sequence " + r + " logit " + v);
                    }
                }
            }
        }
    }

    @Test
    void refusesWeightsOfTheWrongShapeOrDtype() {
        List<CpuDecoder.Layer> wrongShape = List.of(new CpuDecoder.Layer(zeros(DType.F32, 16), zeros(DType.F32, 31, 16),
                zeros(DType.F32, 16, 16), zeros(DType.F32, 16), zeros(DType.F32, 24, 16), zeros(DType.F32, 24, 16),
                zeros(DType.F32, 16, 24)));
        assertThrows(IllegalArgumentException.class, () -> CpuDecoder.of(kernel, DIMS, wrongShape,
                zeros(DType.F32, 50, 16), zeros(DType.F32, 16), zeros(DType.F32, 50, 16)));
        assertThrows(IllegalArgumentException.class, () -> CpuDecoder.of(kernel, DIMS, List.of(layer(DType.BF16)),
                zeros(DType.F32, 50, 16), zeros(DType.F32, 16), zeros(DType.F32, 50, 16)));
        assertThrows(IllegalArgumentException.class, () -> CpuDecoder.of(kernel, DIMS, List.of(),
                zeros(DType.F32, 50, 16), zeros(DType.F32, 16), zeros(DType.F32, 50, 16)));
    }

    @Test
    void refusesBadSequencesWithoutTouchingTheirCaches() {
        try (CpuDecoder d = decoder(DType.F32, 2)) {
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of()));
            List<CpuDecoder.Sequence> tooMany = new ArrayList<>();
            for (int i = 0; i <= CpuKernels.MAX_ROWS; i++) {
                tooMany.add(sequence(DType.F32, 2, 1, 0, 4));
            }
            assertThrows(IllegalArgumentException.class, () -> d.step(tooMany));
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of(sequence(DType.F32, 2, 50, 0, 4))));
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of(sequence(DType.F32, 2, -1, 0, 4))));
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of(sequence(DType.F32, 1, 1, 0, 4))));
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of(sequence(DType.BF16, 2, 1, 0, 4))));
            CpuDecoder.Sequence good = sequence(DType.F32, 2, 1, 0, 4);
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of(new CpuDecoder.Sequence(1, 0, new float[3],
                    new float[4], good.keys(), good.values()))));
            assertThrows(IllegalArgumentException.class, () -> d.step(List.of(good), new float[49]), "logits need 50 floats");
            IllegalStateException full = assertThrows(IllegalStateException.class,
                    () -> d.step(List.of(sequence(DType.F32, 2, 1, 4, 4))));
            assertTrue(full.getMessage().contains("overflow"), full.getMessage());
        }
    }
}

package io.monostream.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.runtime.Sampler;
import io.monostream.testing.TestModels;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.TorchThreads;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The CPU decode kernels ({@link CpuKernels}: decode-sized linears, the gated expert product,
 * one-token attention, RMSNorm) against the libtorch ops they replace, which are the path on
 * CUDA and wherever the library is missing: the same prefill and greedy decode steps through the
 * default model (kernels) and through one with prepacked linears and explicit attention (no
 * linear or attention kernel), and RMSNorm's kernel against its libtorch ops.
 */
class DecodePathsTest {
    private static NDManager manager;

    @BeforeAll
    static void start() {
        TorchThreads.configure(2);
        manager = NDManager.newBaseManager("PyTorch");
    }

    @AfterAll
    static void stop() {
        manager.close();
    }

    private static float spread(float[] v) {
        float min = Float.MAX_VALUE;
        float max = -Float.MAX_VALUE;
        for (float x : v) {
            min = Math.min(min, x);
            max = Math.max(max, x);
        }
        return max - min;
    }

    /**
     * F32: the paths differ only in summation order, so logits agree to 1e-4 of their spread.
     * BF16: each path rounds at the same points but sums in a different order, so a rounded value
     * may land one BF16 step apart; 1.5 % of the spread is the tolerance the BF16 goldens use.
     */
    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"tiny-v2, f32, 0.0001", "tiny-v2, bf16, 0.015", "tiny-v1-sharded, f32, 0.0001",
            "tiny-v1-sharded, bf16, 0.015"})
    void kernelsAndLibtorchOpsGiveTheSameDecode(String name, String dtype, double tolerance) throws Exception {
        Precision precision = Precision.parse(dtype);
        ModelOptions kernels = ModelOptions.of(precision);
        ModelOptions libtorch = new ModelOptions(precision, true, false);
        int[] prompt = {1, 5, 17, 100, 264, 13, 451, 395, 200, 281, 42, 364, 7, 325, 113, 64};
        int steps = 8;
        try (NDManager scope = manager.newSubManager(); Checkpoint checkpoint = Checkpoint.open(TestModels.model(name));
             MonoInternVL a = MonoInternVL.load(checkpoint, scope, -1, kernels);
             MonoInternVL b = MonoInternVL.load(checkpoint, scope, -1, libtorch);
             KvCache cacheA = a.newCache(scope, prompt.length + steps);
             KvCache cacheB = b.newCache(scope, prompt.length + steps)) {
            int[] next = prompt;
            for (int step = 0; step <= steps; step++) {
                try (NDManager s = scope.newSubManager()) {
                    NDArray ha = a.forward(s, next, null, cacheA);
                    NDArray hb = b.forward(s, next, null, cacheB);
                    float[] la = a.logits(ha.get(ha.getShape().get(0) - 1)).toFloatArray();
                    float[] lb = b.logits(hb.get(hb.getShape().get(0) - 1)).toFloatArray();
                    double limit = tolerance * spread(lb);
                    for (int i = 0; i < la.length; i++) {
                        double diff = Math.abs(la[i] - lb[i]);
                        if (!(diff <= limit)) {
                            throw new AssertionError(String.format("%s %s step %d logit %d: kernels %g, libtorch %g"
                                    + " (limit %g)", name, dtype, step, i, la[i], lb[i], limit));
                        }
                    }
                    next = new int[] {Sampler.argmax(lb)};
                }
            }
        }
    }

    /**
     * The whole decode step in one native call ({@link MonoInternVL#decode}) against the same
     * model's layer-by-layer forward and logits, three sequences of different lengths in one
     * batch. F32: the same kernels in the same order, so equal to 1e-6 of the spread; BF16: the
     * final RMSNorm runs in the kernel instead of libtorch's ops, so a value may land one BF16
     * step apart (the 1.5 % BF16 tolerance). Greedy tokens agree at every step.
     */
    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({"tiny-v2, f32, 0.000001", "tiny-v2, bf16, 0.015", "tiny-v1-sharded, f32, 0.000001",
            "tiny-v1-sharded, bf16, 0.015"})
    void wholeDecodeStepMatchesTheLayerByLayerPath(String name, String dtype, double tolerance) throws Exception {
        ModelOptions plain = new ModelOptions(Precision.parse(dtype), false, true);
        int[][] prompts = {{1, 5, 17, 100, 264, 13, 451}, {1, 395, 200}, {1, 281, 42, 364, 7, 325, 113, 64, 9, 31}};
        int steps = 6;
        try (NDManager scope = manager.newSubManager(); Checkpoint checkpoint = Checkpoint.open(TestModels.model(name));
             MonoInternVL model = MonoInternVL.load(checkpoint, scope, 999, plain)) {
            java.util.List<SequenceChunk> stepChunks = new java.util.ArrayList<>();
            java.util.List<SequenceChunk> layerChunks = new java.util.ArrayList<>();
            int[] next = new int[prompts.length];
            for (int i = 0; i < prompts.length; i++) {
                KvCache a = model.newCache(scope, prompts[i].length + steps);
                KvCache b = model.newCache(scope, prompts[i].length + steps);
                try (NDManager s = scope.newSubManager()) {
                    model.forward(s, prompts[i], null, a);
                    NDArray h = model.forward(s, prompts[i], null, b);
                    next[i] = Sampler.argmax(model.logits(h.get(h.getShape().get(0) - 1)).toFloatArray());
                }
                stepChunks.add(SequenceChunk.text(new int[] {next[i]}, a));
                layerChunks.add(SequenceChunk.text(new int[] {next[i]}, b));
            }
            for (int step = 0; step < steps; step++) {
                float[] fused = model.decode(stepChunks);
                assertTrue(fused != null, "the plain " + dtype + " model has the CPU decode step");
                float[] layered;
                try (NDManager s = scope.newSubManager()) {
                    layered = model.logits(model.forward(s, layerChunks)).toFloatArray();
                }
                int vocab = layered.length / prompts.length;
                for (int i = 0; i < prompts.length; i++) {
                    float[] lf = java.util.Arrays.copyOfRange(fused, i * vocab, (i + 1) * vocab);
                    float[] ll = java.util.Arrays.copyOfRange(layered, i * vocab, (i + 1) * vocab);
                    double limit = tolerance * spread(ll);
                    for (int v = 0; v < vocab; v++) {
                        if (!(Math.abs(lf[v] - ll[v]) <= limit)) {
                            throw new AssertionError(String.format("%s %s step %d sequence %d logit %d: one call %g,"
                                    + " layer by layer %g (limit %g)", name, dtype, step, i, v, lf[v], ll[v], limit));
                        }
                    }
                    next[i] = Sampler.argmax(ll);
                    org.junit.jupiter.api.Assertions.assertEquals(next[i], Sampler.argmax(lf), "greedy token, step " + step);
                    stepChunks.set(i, SequenceChunk.text(new int[] {next[i]}, stepChunks.get(i).cache()));
                    layerChunks.set(i, SequenceChunk.text(new int[] {next[i]}, layerChunks.get(i).cache()));
                }
            }
            KvCache cache = stepChunks.get(0).cache();
            int length = cache.length();
            org.junit.jupiter.api.Assertions.assertEquals(prompts[0].length + steps, length);
            // what the step does not take is left to the caller's layer-by-layer path, untouched
            assertTrue(model.decode(java.util.List.of(SequenceChunk.text(new int[] {999}, cache))) == null,
                    "an image-context token");
            assertTrue(model.decode(java.util.List.of(SequenceChunk.text(new int[] {5, 6}, cache))) == null,
                    "two tokens of one sequence");
            org.junit.jupiter.api.Assertions.assertEquals(length, cache.length());
            try (MonoInternVL prepacked = MonoInternVL.load(checkpoint, scope, 999, new ModelOptions(Precision.parse(dtype),
                    true, true));
                 KvCache c = prepacked.newCache(scope, 4)) {
                assertTrue(prepacked.decode(java.util.List.of(SequenceChunk.text(new int[] {5}, c))) == null,
                        "prepacked weights");
            }
        }
    }

    @Test
    void rmsNormKernelMatchesItsLibtorchOps() {
        Random r = new Random(3);
        for (Precision precision : Precision.values()) {
            try (NDManager scope = manager.newSubManager()) {
                float[] xv = new float[5 * 96];
                float[] wv = new float[96];
                for (int i = 0; i < xv.length; i++) {
                    xv[i] = (float) (r.nextGaussian() * 3);
                }
                for (int i = 0; i < wv.length; i++) {
                    wv[i] = (float) r.nextGaussian();
                }
                NDArray x = precision.round(scope.create(xv, new Shape(5, 96)));
                NDArray w = precision.round(scope.create(wv, new Shape(96)));
                RmsNorm norm = new RmsNorm(w, 1e-6, precision);
                float[] kernel = Precision.widen(norm.forward(x)).toFloatArray();
                float[] ops = Precision.widen(norm.reference(x)).toFloatArray();
                double tolerance = precision == Precision.BF16 ? 0.008 : 1e-6; // one BF16 step, or fp32 order
                for (int i = 0; i < kernel.length; i++) {
                    assertTrue(Math.abs(kernel[i] - ops[i]) <= tolerance * Math.max(1, Math.abs(ops[i])),
                            precision + " element " + i + ": kernel " + kernel[i] + ", libtorch " + ops[i]);
                }
            }
        }
    }
}

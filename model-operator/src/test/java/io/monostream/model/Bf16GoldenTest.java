package io.monostream.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.ModelConfig;
import io.monostream.prompt.ImageBlock;
import io.monostream.testing.Goldens;
import io.monostream.testing.TestModels;
import io.monostream.tokenizer.InternLM2Tokenizer;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.DType;
import io.monostream.torch.TorchThreads;
import io.monostream.vision.ImageLimits;
import io.monostream.vision.ImagePreprocessor;
import io.monostream.vision.PreprocessedImage;
import io.monostream.vision.TilingOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The BF16 model against the FP32 reference goldens (tools/reference), on the model API alone.
 *
 * <p><b>Tolerance.</b> BF16 keeps 8 significant bits, so every rounded residual, norm output and
 * projection carries a relative error of up to 2⁻⁹ ≈ 0.2 %, and these add up over the layers.
 * Measured on these goldens (2 threads), the largest first-position logit error is 0.25–1.1 % of
 * the spread (max − min) of the reference logits, i.e. a few BF16 unit roundoffs of the spread.
 * The test allows {@link #RELATIVE_TOLERANCE} = 1.5 % of the spread: above the worst measured
 * case with room for a different summation order (thread count), and far below what a wrong
 * layout, a rounding to the wrong dtype or a lost expert gives (those move logits by a sizeable
 * fraction of the spread).
 *
 * <p><b>Greedy tokens.</b> When every logit moves by at most {@code tol}, the argmax cannot
 * change at a step whose top-2 margin exceeds {@code 2·tol}. The rule: if the golden's
 * {@code min_top2_margin} (the smallest over all its steps) exceeds {@code 2·tol}, the whole
 * greedy sequence must match; otherwise it must match up to the first step whose margin is at
 * most {@code 2·tol}. Per-step margins come from the FP32 model run on the golden's tokens
 * (it matches the reference within 1e-4, {@code GoldenOutputsTest}).
 */
class Bf16GoldenTest {
    static final double RELATIVE_TOLERANCE = 0.015;

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

    static Stream<Path> goldens() {
        return TestModels.goldens();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("goldens")
    void bf16MatchesTheFp32Reference(Path goldenFile) throws Exception {
        check(goldenFile);
    }

    /**
     * The same through the BF16 kernels of AVX-512 CPUs without AVX512-BF16 (operands widened to
     * fp32), which this CPU runs by default when it lacks AVX512-BF16 and otherwise on request.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("goldens")
    void bf16ThroughTheWideningKernelsMatchesTheFp32Reference(Path goldenFile) throws Exception {
        CpuKernels kernel = CpuKernels.get().orElse(null);
        assumeTrue(kernel != null && kernel.isa().startsWith("avx512"), "the widening kernels need AVX-512");
        boolean before = kernel.preferWide(true);
        try {
            check(goldenFile);
        } finally {
            kernel.preferWide(before);
        }
    }

    /**
     * The same on the route AMX-BF16 CPUs take: plain weights, products of many rows through
     * libtorch's BF16 linear (oneDNN, on the tiles there), decode through the CPU kernels.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("goldens")
    void bf16WithPrefillProductsThroughLibtorchMatchesTheFp32Reference(Path goldenFile) throws Exception {
        CpuKernels kernel = CpuKernels.get().orElse(null);
        assumeTrue(kernel != null && kernel.isa().startsWith("avx512"), "plain BF16 weights need AVX-512 here");
        boolean before = kernel.bf16ManyRowsThroughLibtorch(true);
        try {
            assertFalse(kernel.takesManyRows(DType.BF16), "many BF16 rows go to libtorch");
            assertFalse(ModelOptions.of(Precision.BF16).prepackLinears(), "the weights stay plain for the decode kernels");
            check(goldenFile);
        } finally {
            kernel.bf16ManyRowsThroughLibtorch(before);
        }
    }

    private void check(Path goldenFile) throws Exception {
        JsonNode golden = new ObjectMapper().readTree(goldenFile.toFile());
        Path dir = TestModels.model(golden.get("model").asText());
        int[] ids = Goldens.ints(golden.get("input_ids"));
        int[] expectedTokens = Goldens.ints(golden.get("generated_ids"));
        float[] expected = Goldens.floats(golden.get("first_logits"));
        try (Checkpoint checkpoint = Checkpoint.open(dir); InternLM2Tokenizer tokenizer = InternLM2Tokenizer.load(dir);
                NDManager scope = manager.newSubManager()) {
            int imageContext = tokenizer.tokenId(ImageBlock.IMG_CONTEXT);
            try (MonoInternVL model = MonoInternVL.load(checkpoint, scope, imageContext, ModelOptions.of(Precision.BF16));
                    KvCache cache = model.newCache(scope, ids.length + expectedTokens.length)) {
                NDArray imageRows = null;
                if (golden.hasNonNull("image")) {
                    PreprocessedImage image = preprocess(checkpoint.config(), golden);
                    int s = image.tileSize();
                    imageRows = model.embedImages(scope.create(image.pixelValues(), new Shape(image.tileCount(), 3, s, s)));
                }
                NDArray hidden = model.forward(scope, ids, imageRows, cache);
                float[] logits = model.logits(hidden.get(hidden.getShape().get(0) - 1)).toFloatArray();

                double spread = max(expected) - min(expected);
                double tol = RELATIVE_TOLERANCE * spread;
                double maxDiff = 0;
                for (int i = 0; i < expected.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(expected[i] - logits[i]));
                }
                int[] greedy = greedy(model, scope, cache, logits, expectedTokens.length);
                double margin = golden.get("min_top2_margin").asDouble();
                double[] margins = fp32Margins(checkpoint, scope, imageContext, ids, imageRows, expectedTokens);
                int safeSteps = 0;
                while (safeSteps < margins.length && margins[safeSteps] > 2 * tol) {
                    safeSteps++;
                }
                System.out.printf("%s: max |bf16 - fp32| %.4f = %.2f%% of spread %.3f; min margin %.3f; steps with"
                                + " margin > 2·tol: %d of %d; tokens %s vs %s%n", goldenFile.getFileName(), maxDiff,
                        100 * maxDiff / spread, spread, margin, safeSteps, margins.length, Arrays.toString(greedy),
                        Arrays.toString(expectedTokens));
                assertTrue(maxDiff <= tol, "first-position logits differ by " + maxDiff + " > " + tol);
                if (margin > 2 * tol) {
                    assertArrayEquals(expectedTokens, greedy, "greedy tokens (min top-2 margin " + margin + " > 2·tol)");
                } else {
                    assertArrayEquals(Arrays.copyOf(expectedTokens, safeSteps), Arrays.copyOf(greedy, safeSteps),
                            "greedy tokens over the first " + safeSteps + " steps, whose top-2 margins exceed 2·tol");
                }
            }
        }
    }

    /** Top-2 margins of the FP32 model at each step of the golden's own greedy sequence. */
    private static double[] fp32Margins(Checkpoint checkpoint, NDManager scope, int imageContext, int[] ids,
            NDArray imageRows, int[] tokens) {
        try (MonoInternVL model = MonoInternVL.load(checkpoint, scope, imageContext);
                KvCache cache = model.newCache(scope, ids.length + tokens.length);
                NDManager step = scope.newSubManager()) {
            double[] margins = new double[tokens.length];
            NDArray h = model.forward(step, ids, imageRows, cache); // image rows are fp32 in both precisions
            float[] logits = model.logits(h.get(h.getShape().get(0) - 1)).toFloatArray();
            for (int i = 0; i < tokens.length; i++) {
                margins[i] = top2Margin(logits);
                if (i + 1 < tokens.length) {
                    h = model.forward(step, new int[] {tokens[i]}, null, cache);
                    logits = model.logits(h.get(0)).toFloatArray();
                }
            }
            return margins;
        }
    }

    /** Greedy tokens after the prefill, stopping where the golden stopped (its length). */
    private static int[] greedy(MonoInternVL model, NDManager scope, KvCache cache, float[] logits, int count) {
        int[] out = new int[count];
        for (int i = 0; i < count; i++) {
            out[i] = argmax(logits);
            if (i + 1 < count) {
                try (NDManager step = scope.newSubManager()) {
                    NDArray h = model.forward(step, new int[] {out[i]}, null, cache);
                    logits = model.logits(h.get(0)).toFloatArray();
                }
            }
        }
        return out;
    }

    private static PreprocessedImage preprocess(ModelConfig c, JsonNode golden) throws Exception {
        int maxTiles = golden.hasNonNull("max_tiles") ? golden.get("max_tiles").asInt() : c.maxDynamicPatch();
        TilingOptions tiling = new TilingOptions(c.imageSize(), Math.min(c.minDynamicPatch(), maxTiles), maxTiles,
                c.useThumbnail(), c.dynamicImageSize());
        byte[] bytes = Files.readAllBytes(TestModels.image(golden.get("image").asText()));
        return new ImagePreprocessor(tiling, ImageLimits.defaults()).preprocess(bytes);
    }

    static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double top2Margin(float[] v) {
        float[] sorted = v.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length - 1] - sorted[sorted.length - 2];
    }

    private static double max(float[] v) {
        double m = Double.NEGATIVE_INFINITY;
        for (float x : v) {
            m = Math.max(m, x);
        }
        return m;
    }

    private static double min(float[] v) {
        double m = Double.POSITIVE_INFINITY;
        for (float x : v) {
            m = Math.min(m, x);
        }
        return m;
    }

}

package io.monostream.runtime;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.model.KvCache;
import io.monostream.model.MonoInternVL;
import io.monostream.model.SequenceChunk;
import io.monostream.testing.CheckpointRewriter;
import io.monostream.testing.TestModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Spec §10 invariants on the whole model: the wqkv GQA layout (6), expert isolation (8),
 * chunked prefill (10) and the prompt's shape (3, 11).
 */
class ModelInvariantsTest {
    private static final String MODEL = "tiny-v2";

    private static GenerationResult run(Path model, GenerationRequest request) {
        try (Engine engine = Engine.open(EngineOptions.builder(model).threads(2).build())) {
            return engine.generateNow(request);
        }
    }

    private static GenerationRequest textQuestion() {
        return GenerationRequest.builder("text").question("What is written here?").maxNewTokens(4).build();
    }

    private static GenerationRequest imageQuestion() throws Exception {
        return GenerationRequest.builder("image").image(Files.readAllBytes(TestModels.image("wide-700x500.png")))
                .question("Describe the image.").maxNewTokens(4).build();
    }

    private static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double d = 0;
        for (int i = 0; i < a.length; i++) {
            d = Math.max(d, Math.abs(a[i] - b[i]));
        }
        return d;
    }

    @Test
    void rewritingGqaAsMhaLeavesTheLogitsUnchanged(@TempDir Path tmp) throws Exception {
        Path copy = TestModels.copyOf(MODEL, tmp);
        int[] heads = new int[2];
        var llm = io.monostream.checkpoint.ModelConfig.load(copy.resolve("config.json")).llm();
        heads[0] = llm.numHeads();
        heads[1] = llm.numKvHeads();
        int d = llm.headDim();
        int group = heads[0] / heads[1];
        assertTrue(group > 1, "the test checkpoint must use GQA");
        CheckpointRewriter.rewrite(copy, t -> {
            if (!t.name.endsWith(".attention.wqkv.weight")) {
                return;
            }
            int in = (int) t.shape[1];
            int bytesPerRow = t.data.length / (int) t.shape[0];
            // [kv][group + 2][d] → [head][3][d]: every query head gets its own copy of its K and V head
            byte[] mha = new byte[heads[0] * 3 * d * bytesPerRow];
            for (int h = 0; h < heads[0]; h++) {
                int g = h / group;
                int[] sourceSlots = {h % group, group, group + 1};
                for (int s = 0; s < 3; s++) {
                    int src = ((g * (group + 2)) + sourceSlots[s]) * d;
                    int dst = (h * 3 + s) * d;
                    System.arraycopy(t.data, src * bytesPerRow, mha, dst * bytesPerRow, d * bytesPerRow);
                }
            }
            t.data = mha;
            t.shape = new long[] {heads[0] * 3L * d, in};
        }, config -> ((com.fasterxml.jackson.databind.node.ObjectNode) config.get("llm_config")).put("num_key_value_heads", heads[0]));

        GenerationRequest request = imageQuestion();
        float[] gqa = run(TestModels.model(MODEL), request).firstLogits();
        float[] mha = run(copy, request).firstLogits();
        assertTrue(maxDiff(gqa, mha) < 1e-5, "MHA rewrite changed logits by " + maxDiff(gqa, mha));
    }

    @Test
    void perturbingTheVisualExpertLeavesTextOnlyLogitsBitIdentical(@TempDir Path tmp) throws Exception {
        Path copy = TestModels.copyOf(MODEL, tmp);
        CheckpointRewriter.rewrite(copy, t -> {
            if (t.name.contains(".feed_forward_ve.")) {
                for (int i = 0; i < t.data.length; i += 2) {
                    t.data[i] ^= 0x35; // low mantissa bits of every bf16 value
                }
            }
        }, config -> {});
        GenerationResult original = run(TestModels.model(MODEL), textQuestion());
        GenerationResult perturbed = run(copy, textQuestion());
        assertArrayEquals(original.firstLogits(), perturbed.firstLogits());
        // and the perturbation is real: with an image the logits move
        GenerationRequest withImage = imageQuestion();
        assertTrue(maxDiff(run(TestModels.model(MODEL), withImage).firstLogits(), run(copy, withImage).firstLogits()) > 1e-6);
    }

    @Test
    void chunkedPrefillMatchesSingleShotForAnySplit() throws Exception {
        try (Engine engine = Engine.open(EngineOptions.builder(TestModels.model(MODEL)).threads(2).build())) {
            Generator generator = engine.generator();
            MonoInternVL model = generator.model();
            Generator.Prepared prepared = generator.prepare(imageQuestion());
            int[] ids = prepared.inputIds();
            int imageId = model.imageContextId();
            int firstImage = indexOf(ids, imageId);
            int visual = (int) java.util.Arrays.stream(ids).filter(i -> i == imageId).count();
            assertEquals(model.tokensPerTile() * prepared.image().tileCount(), visual, "invariant 3: 256·T image tokens");
            assertEquals(1, ids[0], "invariant 11: BOS first");
            try (NDManager m = model.manager().newSubManager()) {
                int s = prepared.image().tileSize();
                NDArray pixels = m.create(prepared.image().pixelValues(), new Shape(prepared.image().tileCount(), 3, s, s));
                NDArray rows = model.embedImages(pixels);
                float[] single = lastLogits(model, m, ids, rows, new int[] {ids.length});
                int[][] splits = {{firstImage + 1, ids.length}, {firstImage + visual / 2, firstImage + visual + 3, ids.length},
                        {5, firstImage, firstImage + 300, ids.length - 1, ids.length}};
                for (int[] split : splits) {
                    float[] chunked = lastLogits(model, m, ids, rows, split);
                    assertTrue(maxDiff(single, chunked) < 1e-4, "split " + java.util.Arrays.toString(split) + " differs by " + maxDiff(single, chunked));
                }
            }
        }
    }

    /** Prefill in chunks ending at the given exclusive ends; returns the last position's logits. */
    private static float[] lastLogits(MonoInternVL model, NDManager m, int[] ids, NDArray imageRows, int[] ends) {
        try (NDManager scope = m.newSubManager(); KvCache cache = model.newCache(scope, ids.length)) {
            int start = 0;
            int imageAt = 0;
            NDArray last = null;
            for (int end : ends) {
                int[] chunk = java.util.Arrays.copyOfRange(ids, start, end);
                int visual = (int) java.util.Arrays.stream(chunk).filter(i -> i == model.imageContextId()).count();
                NDArray rows = visual == 0 ? null : imageRows.get("{}:{}", imageAt, imageAt + visual);
                imageAt += visual;
                NDArray h = model.forward(scope, List.of(new SequenceChunk(chunk, rows, cache)));
                last = h.get(h.getShape().get(0) - 1);
                start = end;
            }
            return model.logits(last).toFloatArray();
        }
    }

    private static int indexOf(int[] ids, int id) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] == id) {
                return i;
            }
        }
        return -1;
    }
}

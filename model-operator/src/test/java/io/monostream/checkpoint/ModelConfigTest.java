package io.monostream.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** Pins config.json parsing: every value from the file, the documented defaults, and clear rejections. */
class ModelConfigTest {

    @Test
    void readsEveryFieldFromTheFile() {
        ModelConfig c = ModelConfig.parse(TinyCheckpoint.config(), "config.json");
        assertEquals("InternLM2VEForCausalLM", c.architecture());
        assertEquals(28, c.imageSize());
        assertEquals(28, c.visionImageSize());
        assertEquals(14, c.patchSize());
        assertEquals(0.5, c.downsampleRatio());
        assertEquals("v2", c.psVersion());
        assertEquals("internlm2-chat", c.template());
        assertTrue(c.dynamicImageSize());
        assertTrue(c.useThumbnail());
        assertEquals(1, c.minDynamicPatch());
        assertEquals(12, c.maxDynamicPatch());
        assertEquals(1, c.tokensPerTile());
        ModelConfig.LlmConfig l = c.llm();
        assertEquals(16, l.hiddenSize());
        assertEquals(24, l.intermediateSize());
        assertEquals(2, l.numLayers());
        assertEquals(4, l.numHeads());
        assertEquals(2, l.numKvHeads());
        assertEquals(4, l.headDim());
        assertEquals(40, l.vocabSize());
        assertEquals(1e-5, l.rmsNormEps());
        assertEquals(1e6, l.ropeTheta());
        assertEquals(new ModelConfig.RopeScaling("dynamic", 2.0), l.ropeScaling());
        assertEquals(32768, l.maxPositionEmbeddings());
        assertEquals(2, l.padTokenId());
        assertFalse(l.bias());
        assertEquals(32, l.qkvRows());
        assertEquals(2, l.queryGroupSize());
    }

    @Test
    void twoBillionModelGeometryGivesTwoHundredFiftySixTokensPerTile() {
        ModelConfig c = parse(cfg -> {
            cfg.put("force_image_size", 448);
            vision(cfg).put("image_size", 448);
        });
        assertEquals(32, c.visionGrid());
        assertEquals(256, c.tokensPerTile());
    }

    @Test
    void absentFieldsTakeTheDocumentedDefaults() {
        ModelConfig c = parse(cfg -> {
            for (String f : new String[] {"force_image_size", "ps_version", "select_layer", "template", "dynamic_image_size",
                    "use_thumbnail", "min_dynamic_patch", "max_dynamic_patch", "downsample_ratio"}) {
                cfg.remove(f);
            }
            llm(cfg).remove("num_key_value_heads");
            llm(cfg).remove("rope_scaling");
            vision(cfg).remove("hidden_size");
        });
        assertEquals(28, c.imageSize(), "image size falls back to vision_config.image_size");
        assertEquals("v2", c.psVersion());
        assertEquals(-1, c.selectLayer());
        assertEquals(0.5, c.downsampleRatio());
        assertEquals(1, c.minDynamicPatch());
        assertEquals(6, c.maxDynamicPatch());
        assertEquals(4, c.llm().numKvHeads(), "no num_key_value_heads means MHA");
        assertNull(c.llm().ropeScaling());
        assertNull(c.declaredVisionHiddenSize());
    }

    @Test
    void explicitHeadDimWins() {
        assertEquals(8, parse(cfg -> llm(cfg).put("head_dim", 8)).llm().headDim());
    }

    @Test
    void psVersionV1IsHonoured() {
        assertTrue(parse(cfg -> cfg.put("ps_version", "v1")).pixelShuffleV1());
    }

    @Test
    void otherArchitecturesAreRefused() {
        rejects(cfg -> llm(cfg).putArray("architectures").add("InternLM2ForCausalLM"), "InternLM2ForCausalLM");
        rejects(cfg -> llm(cfg).remove("architectures"), "architectures");
    }

    @Test
    void inconsistentGeometryIsRefusedWithTheField() {
        rejects(cfg -> llm(cfg).put("num_key_value_heads", 3), "num_key_value_heads 3");
        rejects(cfg -> llm(cfg).put("num_attention_heads", 5), "not divisible");
        rejects(cfg -> cfg.put("ps_version", "v3"), "ps_version v3");
        rejects(cfg -> cfg.put("select_layer", -4), "select_layer");
        rejects(cfg -> cfg.put("downsample_ratio", 0.3), "downsample_ratio");
        rejects(cfg -> cfg.put("force_image_size", 30), "patch_size");
        rejects(cfg -> llm(cfg).remove("hidden_size"), "llm_config.hidden_size");
        rejects(cfg -> llm(cfg).put("hidden_size", "big"), "llm_config.hidden_size");
        rejects(cfg -> ((ObjectNode) llm(cfg).get("rope_scaling")).put("type", "yarn"), "rope_scaling.type");
        rejects(cfg -> ((ObjectNode) llm(cfg).get("rope_scaling")).put("factor", 0.5), "rope_scaling.factor");
        rejects(cfg -> cfg.remove("vision_config"), "vision_config");
        rejects(cfg -> cfg.put("max_dynamic_patch", 0), "max_dynamic_patch");
    }

    private static ModelConfig parse(Consumer<ObjectNode> edit) {
        ObjectNode cfg = TinyCheckpoint.config();
        edit.accept(cfg);
        return ModelConfig.parse(cfg, "/models/x/config.json");
    }

    private static void rejects(Consumer<ObjectNode> edit, String fragment) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> parse(edit));
        assertTrue(e.getMessage().contains("/models/x/config.json"), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), () -> "lacks '" + fragment + "': " + e.getMessage());
    }

    private static ObjectNode llm(ObjectNode cfg) {
        return (ObjectNode) cfg.get("llm_config");
    }

    private static ObjectNode vision(ObjectNode cfg) {
        return (ObjectNode) cfg.get("vision_config");
    }
}

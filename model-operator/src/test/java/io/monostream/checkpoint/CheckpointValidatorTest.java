package io.monostream.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Pins the expected tensor list against the spec's 2B figures (spec §2 tensors, §10 invariant 12). */
class CheckpointValidatorTest {

    /** The Mono-InternVL-2B config.json values from spec §2. */
    private static ModelConfig twoBillion() {
        ObjectNode cfg = TinyCheckpoint.config();
        cfg.put("force_image_size", 448);
        ObjectNode vision = (ObjectNode) cfg.get("vision_config");
        vision.put("image_size", 448);
        vision.put("hidden_size", 1024);
        ObjectNode llm = (ObjectNode) cfg.get("llm_config");
        llm.put("hidden_size", 2048);
        llm.put("intermediate_size", 8192);
        llm.put("num_hidden_layers", 24);
        llm.put("num_attention_heads", 16);
        llm.put("num_key_value_heads", 8);
        llm.put("vocab_size", 92553);
        return ModelConfig.parse(cfg, "2B config.json");
    }

    @Test
    void twoBillionModelHasTheSpecParameterCount() {
        Map<String, long[]> shapes = CheckpointValidator.expectedShapes(twoBillion(), 1024);
        long total = shapes.values().stream().mapToLong(TensorInfo::elementCount).sum();
        assertEquals(3_111_355_392L, total);
        assertEquals(13 + 24 * 10, shapes.size());
    }

    @Test
    void twoBillionShapesMatchTheSpecTable() {
        Map<String, long[]> s = CheckpointValidator.expectedShapes(twoBillion(), 1024);
        assertArrayEquals(new long[] {1024, 3, 14, 14}, s.get("vision_model.embeddings.patch_embedding.weight"));
        assertArrayEquals(new long[] {1, 1025, 1024}, s.get("vision_model.embeddings.position_embedding"));
        assertArrayEquals(new long[] {4096}, s.get("mlp1.0.weight"));
        assertArrayEquals(new long[] {2048, 4096}, s.get("mlp1.1.weight"));
        assertArrayEquals(new long[] {2048, 2048}, s.get("mlp1.3.weight"));
        assertArrayEquals(new long[] {92553, 2048}, s.get("language_model.output.weight"));
        assertArrayEquals(new long[] {4096, 2048}, s.get("language_model.model.layers.23.attention.wqkv.weight"));
        assertArrayEquals(new long[] {2048, 2048}, s.get("language_model.model.layers.23.attention.wo.weight"));
        assertArrayEquals(new long[] {8192, 2048}, s.get("language_model.model.layers.23.feed_forward_ve.w3.weight"));
        assertArrayEquals(new long[] {2048, 8192}, s.get("language_model.model.layers.23.feed_forward.w2.weight"));
    }
}

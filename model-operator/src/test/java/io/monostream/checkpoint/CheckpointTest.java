package io.monostream.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pins checkpoint opening: single file and shards, every expected shape checked, unexpected keys reported, errors naming files. */
class CheckpointTest {
    private static final String WQKV0 = "language_model.model.layers.0.attention.wqkv.weight";

    @TempDir
    Path tmp;

    @Test
    void opensSingleFileAndCountsEveryParameter() throws IOException {
        Path dir = TinyCheckpoint.write(tmp.resolve("Tiny-Mono"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals("Tiny-Mono", ckpt.modelName());
            assertEquals(dir.toAbsolutePath().normalize(), ckpt.directory());
            assertEquals(TinyCheckpoint.C, ckpt.visionHiddenSize());
            assertEquals(List.of(), ckpt.unexpectedKeys());
            assertEquals(13 + 10 * TinyCheckpoint.LAYERS, ckpt.tensorNames().size()); // spec §2: ten tensors per layer
            assertEquals(TinyCheckpoint.parameterCount(), ckpt.parameterCount());
            assertArrayEquals(new long[] {32, 16}, ckpt.info(WQKV0).shape());
            assertEquals(32L * 16 * 2, ckpt.segment(WQKV0).byteSize());
            float[] w = ckpt.readFloats(WQKV0);
            assertEquals(0f, w[0]);
            assertEquals(0.125f, w[1]);
            assertEquals(0.75f, w[6]);
        }
    }

    @Test
    void shardedCheckpointMapsEachShardOnce() throws IOException {
        Path dir = tmp.resolve("sharded");
        TinyCheckpoint.writeConfig(dir, TinyCheckpoint.config());
        SafetensorsWriter all = TinyCheckpoint.tensors();
        // Split by name: the vision side and layer 0 in shard 1, the rest in shard 2.
        ObjectNode index = new ObjectMapper().createObjectNode();
        index.putObject("metadata").put("total_size", 0);
        ObjectNode map = index.putObject("weight_map");
        SafetensorsWriter one = new SafetensorsWriter();
        SafetensorsWriter two = new SafetensorsWriter();
        copySplit(all, one, two, map);
        one.write(dir.resolve("model-00001-of-00002.safetensors"));
        two.f32("language_model.model.layers.1.attention.rotary_emb.inv_freq", new long[] {2}, 1f, 0.01f);
        two.write(dir.resolve("model-00002-of-00002.safetensors"));
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), index.toPrettyString());

        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(2, ckpt.files().size());
            assertTrue(ckpt.info("mlp1.1.weight").file().endsWith("model-00001-of-00002.safetensors"));
            assertTrue(ckpt.info("language_model.output.weight").file().endsWith("model-00002-of-00002.safetensors"));
            // the rotary cache is in the shard but neither unexpected nor counted
            assertEquals(List.of(), ckpt.unexpectedKeys());
            assertEquals(TinyCheckpoint.parameterCount(), ckpt.parameterCount());
            assertEquals(0.125f, ckpt.readFloats("language_model.model.norm.weight")[1]);
        }
    }

    /** Names containing "vision", "mlp1" or "layers.0." go to {@code one}, the rest to {@code two}. */
    private static void copySplit(SafetensorsWriter all, SafetensorsWriter one, SafetensorsWriter two, ObjectNode map) {
        ModelConfig cfg = ModelConfig.parse(TinyCheckpoint.config(), "tiny");
        for (var e : CheckpointValidator.expectedShapes(cfg, TinyCheckpoint.C).entrySet()) {
            String name = e.getKey();
            assertTrue(all.contains(name));
            boolean first = name.startsWith("vision") || name.startsWith("mlp1") || name.contains("layers.0.");
            (first ? one : two).bf16Filled(name, e.getValue());
            map.put(name, first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors");
        }
    }

    @Test
    void missingShardIsNamed() throws IOException {
        Path dir = tmp.resolve("noshard");
        TinyCheckpoint.writeConfig(dir, TinyCheckpoint.config());
        TinyCheckpoint.tensors().write(dir.resolve("model-00001-of-00002.safetensors"));
        ObjectNode index = new ObjectMapper().createObjectNode();
        index.putObject("weight_map").put("mlp1.1.weight", "model-00001-of-00002.safetensors").put("mlp1.3.weight", "model-00002-of-00002.safetensors");
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), index.toString());
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("model-00002-of-00002.safetensors") && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void indexEntryAbsentFromItsShardIsAnError() throws IOException {
        Path dir = tmp.resolve("liar");
        TinyCheckpoint.writeConfig(dir, TinyCheckpoint.config());
        new SafetensorsWriter().bf16Filled("mlp1.1.weight", 16, 32).write(dir.resolve("a.safetensors"));
        ObjectNode index = new ObjectMapper().createObjectNode();
        index.putObject("weight_map").put("mlp1.1.weight", "a.safetensors").put("mlp1.3.weight", "a.safetensors");
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), index.toString());
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("mlp1.3.weight") && e.getMessage().contains("a.safetensors"), e.getMessage());
    }

    @Test
    void missingTensorNamesTensorShapeAndDirectory() throws IOException {
        Path dir = tmp.resolve("missing");
        TinyCheckpoint.writeConfig(dir, TinyCheckpoint.config());
        SafetensorsWriter w = new SafetensorsWriter();
        ModelConfig cfg = ModelConfig.parse(TinyCheckpoint.config(), "tiny");
        String dropped = "language_model.model.layers.1.feed_forward_ve.w2.weight";
        CheckpointValidator.expectedShapes(cfg, TinyCheckpoint.C).forEach((name, shape) -> {
            if (!name.equals(dropped)) {
                w.bf16Filled(name, shape);
            }
        });
        w.write(dir.resolve(Checkpoint.SINGLE_FILE));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains(dropped) && e.getMessage().contains("[16, 24]") && e.getMessage().contains(dir.toString()), e.getMessage());
    }

    @Test
    void misShapedTensorNamesExpectedAndFoundShapeAndFile() throws IOException {
        Path dir = tmp.resolve("misshaped");
        TinyCheckpoint.writeConfig(dir, TinyCheckpoint.config());
        ModelConfig cfg = ModelConfig.parse(TinyCheckpoint.config(), "tiny");
        SafetensorsWriter w = new SafetensorsWriter();
        // A [Q|K|V]-sized MHA wqkv (3 x hidden rows) instead of the GQA one (spec §6)
        CheckpointValidator.expectedShapes(cfg, TinyCheckpoint.C).forEach((name, shape) ->
                w.bf16Filled(name, name.equals(WQKV0) ? new long[] {48, 16} : shape));
        Path file = w.write(dir.resolve(Checkpoint.SINGLE_FILE));
        CheckpointException e = assertThrows(CheckpointException.class, () -> Checkpoint.open(dir));
        String m = e.getMessage();
        assertTrue(m.contains(WQKV0) && m.contains("[48, 16]") && m.contains("[32, 16]") && m.contains(file.toString()), m);
    }

    @Test
    void unexpectedKeysAreReportedNotFatal() throws IOException {
        Path dir = tmp.resolve("experts");
        TinyCheckpoint.writeConfig(dir, TinyCheckpoint.config());
        SafetensorsWriter w = TinyCheckpoint.tensors()
                .bf16Filled("language_model.model.layers.0.attention_ve.wqkv.weight", 32, 16)
                .f32("language_model.model.layers.0.attention.rotary_emb.inv_freq", new long[] {2}, 1f, 0.001f);
        w.write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(List.of("language_model.model.layers.0.attention_ve.wqkv.weight"), ckpt.unexpectedKeys());
            assertEquals(TinyCheckpoint.parameterCount() + 32 * 16, ckpt.parameterCount());
            assertTrue(ckpt.tensorNames().contains("language_model.model.layers.0.attention.rotary_emb.inv_freq"));
        }
    }

    @Test
    void unknownTensorLookupNamesTensorAndDirectory() throws IOException {
        Path dir = TinyCheckpoint.write(tmp.resolve("lookup"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            CheckpointException e = assertThrows(CheckpointException.class, () -> ckpt.segment("no.such.weight"));
            assertTrue(e.getMessage().contains("no.such.weight") && e.getMessage().contains(ckpt.directory().toString()), e.getMessage());
        }
    }

    @Test
    void directoryWithoutWeightsOrConfigIsRejected() throws IOException {
        Path noConfig = Files.createDirectories(tmp.resolve("empty"));
        CheckpointException e1 = assertThrows(CheckpointException.class, () -> Checkpoint.open(noConfig));
        assertTrue(e1.getMessage().contains("config.json"), e1.getMessage());
        Path noWeights = tmp.resolve("noweights");
        TinyCheckpoint.writeConfig(noWeights, TinyCheckpoint.config());
        CheckpointException e2 = assertThrows(CheckpointException.class, () -> Checkpoint.open(noWeights));
        assertTrue(e2.getMessage().contains(Checkpoint.SINGLE_FILE) && e2.getMessage().contains(noWeights.toString()), e2.getMessage());
        CheckpointException e3 = assertThrows(CheckpointException.class, () -> Checkpoint.open(tmp.resolve("nowhere")));
        assertTrue(e3.getMessage().contains("nowhere"), e3.getMessage());
    }

    @Test
    void visionWidthComesFromThePatchEmbedding() throws IOException {
        Path dir = tmp.resolve("width");
        ObjectNode config = TinyCheckpoint.config();
        ((ObjectNode) config.get("vision_config")).put("hidden_size", 1024); // disagrees with the tensors: warned, not used
        TinyCheckpoint.writeConfig(dir, config);
        TinyCheckpoint.tensors().write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(TinyCheckpoint.C, ckpt.visionHiddenSize());
        }
    }

    @Test
    void positionTableFollowsVisionImageSizeNotForcedSize() throws IOException {
        Path dir = tmp.resolve("forced");
        ObjectNode config = TinyCheckpoint.config();
        config.put("force_image_size", 56); // runs at 4x4 patches, table trained at 2x2 (spec §4 resize)
        TinyCheckpoint.writeConfig(dir, config);
        TinyCheckpoint.tensors().write(dir.resolve(Checkpoint.SINGLE_FILE));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            assertEquals(56, ckpt.config().imageSize());
            assertEquals(4, ckpt.config().tokensPerTile());
            assertArrayEquals(new long[] {1, 5, 8}, ckpt.info("vision_model.embeddings.position_embedding").shape());
        }
    }

    @Test
    void tensorNamesAreTheCheckpointsOwn() throws IOException {
        Path dir = TinyCheckpoint.write(tmp.resolve("names"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            Set<String> names = ckpt.tensorNames();
            assertTrue(names.contains("language_model.model.layers.1.feed_forward_ve.w1.weight"));
            assertThrows(UnsupportedOperationException.class, () -> names.remove("mlp1.1.weight"));
        }
    }
}

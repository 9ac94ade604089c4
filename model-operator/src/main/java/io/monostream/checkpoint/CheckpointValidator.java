package io.monostream.checkpoint;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Checks a checkpoint's tensors against the shapes its config implies (spec §2 "Tensors"): every
 * expected tensor must exist with exactly that shape; rotary caches are skipped; any other key is
 * reported as unexpected (possibly Mono-InternVL-1.5 attention experts, spec §7), not fatal.
 */
final class CheckpointValidator {
    private static final Logger LOG = LoggerFactory.getLogger(CheckpointValidator.class);

    static final String PATCH_EMBEDDING = "vision_model.embeddings.patch_embedding.weight";
    static final String ROTARY_SUFFIX = "rotary_emb.inv_freq";
    private static final String LM = "language_model.model.";

    /** What validation learned: the vision width and the keys that are not part of the model. */
    record Result(int visionHiddenSize, List<String> unexpectedKeys) {}

    private CheckpointValidator() {}

    static boolean isRotaryCache(String name) {
        return name.endsWith(ROTARY_SUFFIX);
    }

    static Result validate(ModelConfig config, Map<String, TensorInfo> tensors, Path directory) {
        int c = visionHiddenSize(config, tensors, directory);
        Map<String, long[]> expected = expectedShapes(config, c);
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            TensorInfo info = tensors.get(e.getKey());
            if (info == null) {
                if (e.getKey().equals("language_model.output.weight") && config.llm().tieWordEmbeddings()) {
                    continue; // tied head reuses tok_embeddings
                }
                throw new CheckpointException("tensor " + e.getKey() + " with shape " + Arrays.toString(e.getValue())
                        + " is missing from the checkpoint in " + directory);
            }
            if (!Arrays.equals(info.shape(), e.getValue())) {
                throw new CheckpointException("tensor " + e.getKey() + " has shape " + info.shapeString() + " but the config in "
                        + directory + " implies " + Arrays.toString(e.getValue()) + " (file " + info.file() + ")");
            }
        }
        List<String> unexpected = new ArrayList<>();
        for (String name : tensors.keySet()) {
            if (!expected.containsKey(name) && !isRotaryCache(name)) {
                unexpected.add(name);
            }
        }
        if (!unexpected.isEmpty()) {
            LOG.warn("{} tensor(s) in {} are not part of a Mono-InternVL v1 model and are ignored (1.5 attention experts? spec §7): {}",
                    unexpected.size(), directory, unexpected.size() > 20 ? unexpected.subList(0, 20) + " ..." : unexpected);
        }
        return new Result(c, List.copyOf(unexpected));
    }

    /** C comes from the patch embedding itself; vision_config.hidden_size is only a hint (spec §2 marks it [I]). */
    private static int visionHiddenSize(ModelConfig config, Map<String, TensorInfo> tensors, Path directory) {
        TensorInfo patch = tensors.get(PATCH_EMBEDDING);
        if (patch == null) {
            throw new CheckpointException("tensor " + PATCH_EMBEDDING + " is missing from the checkpoint in " + directory);
        }
        long[] s = patch.shape();
        int p = config.patchSize();
        if (s.length != 4 || s[1] != config.numChannels() || s[2] != p || s[3] != p || s[0] <= 0 || s[0] > Integer.MAX_VALUE) {
            throw new CheckpointException("tensor " + PATCH_EMBEDDING + " has shape " + patch.shapeString() + " but the config in " + directory
                    + " implies [C, " + config.numChannels() + ", " + p + ", " + p + "] (file " + patch.file() + ")");
        }
        int c = (int) s[0];
        Integer declared = config.declaredVisionHiddenSize();
        if (declared != null && declared != c) {
            LOG.warn("vision_config.hidden_size is {} in {} but the patch embedding has {} channels; using {}", declared, directory, c, c);
        }
        return c;
    }

    /** Every tensor a v1 checkpoint must hold, with its shape, in checkpoint order. */
    static Map<String, long[]> expectedShapes(ModelConfig config, int c) {
        ModelConfig.LlmConfig l = config.llm();
        long h = l.hiddenSize();
        long inter = l.intermediateSize();
        long v = l.vocabSize();
        int p = config.patchSize();
        long positions = (long) config.positionGrid() * config.positionGrid() + 1; // + CLS slot (spec §4)
        long mlpIn = (long) c * config.downsampleScale() * config.downsampleScale();

        Map<String, long[]> m = new LinkedHashMap<>();
        m.put(PATCH_EMBEDDING, new long[] {c, config.numChannels(), p, p});
        m.put("vision_model.embeddings.patch_embedding.bias", new long[] {c});
        m.put("vision_model.embeddings.position_embedding", new long[] {1, positions, c});
        m.put("vision_model.embeddings.class_embedding", new long[] {1, 1, c});
        m.put("mlp1.0.weight", new long[] {mlpIn});
        m.put("mlp1.0.bias", new long[] {mlpIn});
        m.put("mlp1.1.weight", new long[] {h, mlpIn});
        m.put("mlp1.1.bias", new long[] {h});
        m.put("mlp1.3.weight", new long[] {h, h});
        m.put("mlp1.3.bias", new long[] {h});
        m.put(LM + "tok_embeddings.weight", new long[] {v, h});
        m.put(LM + "norm.weight", new long[] {h});
        m.put("language_model.output.weight", new long[] {v, h});
        long attnOut = (long) l.numHeads() * l.headDim();
        for (int i = 0; i < l.numLayers(); i++) {
            String layer = LM + "layers." + i + ".";
            m.put(layer + "attention_norm.weight", new long[] {h});
            m.put(layer + "ffn_norm.weight", new long[] {h});
            m.put(layer + "attention.wqkv.weight", new long[] {l.qkvRows(), h});
            m.put(layer + "attention.wo.weight", new long[] {h, attnOut});
            if (l.bias()) {
                m.put(layer + "attention.wqkv.bias", new long[] {l.qkvRows()});
                m.put(layer + "attention.wo.bias", new long[] {h});
            }
            for (String ffn : new String[] {"feed_forward.", "feed_forward_ve."}) {
                m.put(layer + ffn + "w1.weight", new long[] {inter, h});
                m.put(layer + ffn + "w3.weight", new long[] {inter, h});
                m.put(layer + ffn + "w2.weight", new long[] {h, inter});
            }
        }
        return m;
    }
}

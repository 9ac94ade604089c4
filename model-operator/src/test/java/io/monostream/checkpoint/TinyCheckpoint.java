package io.monostream.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A tiny, structurally complete Mono-InternVL checkpoint for loader tests: C=8, hidden 16, 2 layers,
 * 4 query heads over 2 KV heads, vocabulary 40, 28-pixel tiles of 14-pixel patches.
 */
public final class TinyCheckpoint {
    public static final int C = 8;
    public static final int HIDDEN = 16;
    public static final int INTERMEDIATE = 24;
    public static final int LAYERS = 2;
    public static final int HEADS = 4;
    public static final int KV_HEADS = 2;
    public static final int VOCAB = 40;
    public static final int IMAGE = 28;
    public static final int PATCH = 14;

    private TinyCheckpoint() {}

    public static ObjectNode config() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.putArray("architectures").add("InternVLChatModel");
        root.put("downsample_ratio", 0.5);
        root.put("dynamic_image_size", true);
        root.put("force_image_size", IMAGE);
        root.put("max_dynamic_patch", 12);
        root.put("min_dynamic_patch", 1);
        root.put("ps_version", "v2");
        root.put("select_layer", -1);
        root.put("template", "internlm2-chat");
        root.put("use_thumbnail", true);
        ObjectNode llm = root.putObject("llm_config");
        llm.putArray("architectures").add("InternLM2VEForCausalLM");
        llm.put("model_type", "internlm2ve");
        llm.put("hidden_size", HIDDEN);
        llm.put("intermediate_size", INTERMEDIATE);
        llm.put("num_hidden_layers", LAYERS);
        llm.put("num_attention_heads", HEADS);
        llm.put("num_key_value_heads", KV_HEADS);
        llm.put("vocab_size", VOCAB);
        llm.put("rms_norm_eps", 1e-5);
        llm.put("rope_theta", 1000000.0);
        ObjectNode rope = llm.putObject("rope_scaling");
        rope.put("type", "dynamic");
        rope.put("factor", 2.0);
        llm.put("max_position_embeddings", 32768);
        llm.put("bos_token_id", 1);
        llm.put("eos_token_id", 2);
        llm.put("pad_token_id", 2);
        llm.put("bias", false);
        llm.put("tie_word_embeddings", false);
        ObjectNode vision = root.putObject("vision_config");
        vision.put("model_type", "intern_vit_patch");
        vision.put("image_size", IMAGE);
        vision.put("patch_size", PATCH);
        vision.put("hidden_size", C);
        return root;
    }

    /**
     * All expected tensors, BF16, with shapes written out by hand from spec §2 (not from the validator,
     * so the validator is checked against an independent list).
     */
    public static SafetensorsWriter tensors() {
        int mlpIn = C * 4; // 2x2 pixel shuffle
        int qkv = (HEADS + 2 * KV_HEADS) * (HIDDEN / HEADS);
        SafetensorsWriter w = new SafetensorsWriter()
                .bf16Filled("vision_model.embeddings.patch_embedding.weight", C, 3, PATCH, PATCH)
                .bf16Filled("vision_model.embeddings.patch_embedding.bias", C)
                .bf16Filled("vision_model.embeddings.position_embedding", 1, (IMAGE / PATCH) * (IMAGE / PATCH) + 1, C)
                .bf16Filled("vision_model.embeddings.class_embedding", 1, 1, C)
                .bf16Filled("mlp1.0.weight", mlpIn)
                .bf16Filled("mlp1.0.bias", mlpIn)
                .bf16Filled("mlp1.1.weight", HIDDEN, mlpIn)
                .bf16Filled("mlp1.1.bias", HIDDEN)
                .bf16Filled("mlp1.3.weight", HIDDEN, HIDDEN)
                .bf16Filled("mlp1.3.bias", HIDDEN)
                .bf16Filled("language_model.model.tok_embeddings.weight", VOCAB, HIDDEN)
                .bf16Filled("language_model.model.norm.weight", HIDDEN)
                .bf16Filled("language_model.output.weight", VOCAB, HIDDEN);
        for (int i = 0; i < LAYERS; i++) {
            String l = "language_model.model.layers." + i + ".";
            w.bf16Filled(l + "attention_norm.weight", HIDDEN)
                    .bf16Filled(l + "ffn_norm.weight", HIDDEN)
                    .bf16Filled(l + "attention.wqkv.weight", qkv, HIDDEN)
                    .bf16Filled(l + "attention.wo.weight", HIDDEN, HIDDEN);
            for (String ffn : new String[] {"feed_forward.", "feed_forward_ve."}) {
                w.bf16Filled(l + ffn + "w1.weight", INTERMEDIATE, HIDDEN)
                        .bf16Filled(l + ffn + "w3.weight", INTERMEDIATE, HIDDEN)
                        .bf16Filled(l + ffn + "w2.weight", HIDDEN, INTERMEDIATE);
            }
        }
        return w;
    }

    /** Parameters of {@link #tensors()}, counted by hand. */
    public static long parameterCount() {
        long vision = (long) C * 3 * PATCH * PATCH + C + 5L * C + C;
        long mlp = 32 + 32 + 16L * 32 + 16 + 16 * 16 + 16;
        long lm = 2L * VOCAB * HIDDEN + HIDDEN;
        long perLayer = 2L * HIDDEN + 32L * HIDDEN + (long) HIDDEN * HIDDEN + 2 * 3L * INTERMEDIATE * HIDDEN;
        return vision + mlp + lm + LAYERS * perLayer;
    }

    public static void writeConfig(Path dir, ObjectNode config) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(Checkpoint.CONFIG_FILE), config.toPrettyString());
    }

    /** Writes config.json and one model.safetensors into {@code dir}. */
    public static Path write(Path dir) throws IOException {
        writeConfig(dir, config());
        tensors().write(dir.resolve(Checkpoint.SINGLE_FILE));
        return dir;
    }
}

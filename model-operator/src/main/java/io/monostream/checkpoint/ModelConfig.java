package io.monostream.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The parts of a Mono-InternVL {@code config.json} (top-level InternVLChat config with nested
 * {@code vision_config} and {@code llm_config}) that inference needs (spec §2). Every value comes
 * from the file; where a field is absent the reference configuration classes' defaults apply
 * (noted per field), except where the spec says otherwise (ps_version, select_layer).
 *
 * @param architecture      {@code llm_config.architectures[0]}; only {@link #SUPPORTED_ARCHITECTURE} is accepted (spec §2 dispatch)
 * @param imageSize         tile size the model runs at: {@code force_image_size}, else {@code vision_config.image_size}
 * @param visionImageSize   {@code vision_config.image_size}: the size the position table was trained for (spec §4)
 * @param patchSize         {@code vision_config.patch_size}
 * @param numChannels       {@code vision_config.num_channels} (default 3)
 * @param declaredVisionHiddenSize {@code vision_config.hidden_size} or null; informational only, the checkpoint's
 *                          patch embedding decides the vision width (spec §2 marks the field [I])
 * @param downsampleRatio   pixel-shuffle ratio (default 0.5)
 * @param psVersion         pixel-shuffle layout, "v1" or "v2" (default v2, spec §2)
 * @param selectLayer       must be -1 (default -1)
 * @param template          prompt template name (default internlm2-chat, spec §2)
 * @param dynamicImageSize  dynamic tiling on (default false, as the reference config class)
 * @param useThumbnail      append a thumbnail tile (default false, as the reference config class)
 * @param minDynamicPatch   minimum tiles (default 1)
 * @param maxDynamicPatch   maximum tiles (default 6)
 */
public record ModelConfig(
        String architecture,
        int imageSize,
        int visionImageSize,
        int patchSize,
        int numChannels,
        Integer declaredVisionHiddenSize,
        double downsampleRatio,
        String psVersion,
        int selectLayer,
        String template,
        boolean dynamicImageSize,
        boolean useThumbnail,
        int minDynamicPatch,
        int maxDynamicPatch,
        LlmConfig llm) {

    public static final String SUPPORTED_ARCHITECTURE = "InternLM2VEForCausalLM";

    /**
     * The InternLM2 decoder's configuration ({@code llm_config}). Defaults for absent fields are those of
     * the reference {@code InternLM2Config}; the sizes themselves are required.
     *
     * @param headDim      {@code head_dim} when given, else hidden / heads
     * @param ropeScaling  null when the file has none
     * @param bias         linear biases in the decoder (default true as in InternLM2Config; Mono-InternVL sets false)
     */
    public record LlmConfig(
            int hiddenSize,
            int intermediateSize,
            int numLayers,
            int numHeads,
            int numKvHeads,
            int headDim,
            int vocabSize,
            double rmsNormEps,
            double ropeTheta,
            RopeScaling ropeScaling,
            int maxPositionEmbeddings,
            int bosTokenId,
            int eosTokenId,
            int padTokenId,
            boolean bias,
            boolean tieWordEmbeddings) {

        /** Rows of the fused {@code wqkv} projection: (heads + 2 kv heads) x headDim (spec §6). */
        public int qkvRows() {
            return (numHeads + 2 * numKvHeads) * headDim;
        }

        /** Query heads per KV head. */
        public int queryGroupSize() {
            return numHeads / numKvHeads;
        }
    }

    /** RoPE scaling (spec §6): {@code dynamic} NTK or {@code linear} position division. */
    public record RopeScaling(String type, double factor) {
        public boolean dynamic() {
            return type.equals("dynamic");
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads and validates {@code config.json}. */
    public static ModelConfig load(Path configJson) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(configJson));
        } catch (NoSuchFileException e) {
            throw new CheckpointException("config.json not found: " + configJson, e);
        } catch (IOException e) {
            throw new CheckpointException("cannot parse " + configJson + ": " + e.getMessage(), e);
        }
        return parse(root, configJson.toString());
    }

    /** Parses an already-read config; {@code source} names the file in error messages. */
    public static ModelConfig parse(JsonNode root, String source) {
        Fields top = new Fields(root, source, "");
        if (root == null || !root.isObject()) {
            throw new CheckpointException(source + ": config is not a JSON object");
        }
        Fields vision = top.object("vision_config");
        Fields llmFields = top.object("llm_config");

        JsonNode archs = llmFields.node.get("architectures");
        if (archs == null || !archs.isArray() || archs.isEmpty() || !archs.get(0).isTextual()) {
            throw new CheckpointException(source + ": llm_config.architectures[0] is missing; cannot tell which model this is");
        }
        String architecture = archs.get(0).asText();
        if (!architecture.equals(SUPPORTED_ARCHITECTURE)) {
            throw new CheckpointException(source + ": llm_config.architectures[0] is " + architecture + "; only "
                    + SUPPORTED_ARCHITECTURE + " (Mono-InternVL) is supported");
        }

        int visionImageSize = vision.requiredInt("image_size");
        int patchSize = vision.requiredInt("patch_size");
        int numChannels = vision.optionalInt("num_channels", 3);
        Integer declaredHidden = vision.node.hasNonNull("hidden_size") ? vision.requiredInt("hidden_size") : null;
        int imageSize = top.node.hasNonNull("force_image_size") ? top.requiredInt("force_image_size") : visionImageSize;
        double downsampleRatio = top.optionalDouble("downsample_ratio", 0.5);
        String psVersion = top.optionalText("ps_version", "v2");
        int selectLayer = top.optionalInt("select_layer", -1);
        String template = top.optionalText("template", "internlm2-chat");
        boolean dynamic = top.optionalBoolean("dynamic_image_size", false);
        boolean thumbnail = top.optionalBoolean("use_thumbnail", false);
        int minPatch = top.optionalInt("min_dynamic_patch", 1);
        int maxPatch = top.optionalInt("max_dynamic_patch", 6);

        ModelConfig config = new ModelConfig(architecture, imageSize, visionImageSize, patchSize, numChannels, declaredHidden,
                downsampleRatio, psVersion, selectLayer, template, dynamic, thumbnail, minPatch, maxPatch, parseLlm(llmFields));
        config.validate(source);
        return config;
    }

    private static LlmConfig parseLlm(Fields f) {
        int hidden = f.requiredInt("hidden_size");
        int heads = f.requiredInt("num_attention_heads");
        int kvHeads = f.optionalInt("num_key_value_heads", heads); // InternLM2Config: None means MHA
        Integer headDim = f.node.hasNonNull("head_dim") ? f.requiredInt("head_dim") : null;
        if (headDim == null) {
            if (heads <= 0 || hidden % heads != 0) {
                throw new CheckpointException(f.source + ": llm_config.hidden_size " + hidden + " is not divisible by num_attention_heads "
                        + heads + " and no head_dim is given");
            }
            headDim = hidden / heads;
        }
        return new LlmConfig(
                hidden,
                f.requiredInt("intermediate_size"),
                f.requiredInt("num_hidden_layers"),
                heads,
                kvHeads,
                headDim,
                f.requiredInt("vocab_size"),
                f.optionalDouble("rms_norm_eps", 1e-6),
                f.optionalDouble("rope_theta", 10000.0),
                parseRopeScaling(f),
                f.optionalInt("max_position_embeddings", 2048),
                f.optionalInt("bos_token_id", 1),
                firstInt(f, "eos_token_id", 2),
                f.optionalInt("pad_token_id", 0),
                f.optionalBoolean("bias", true),
                f.optionalBoolean("tie_word_embeddings", false));
    }

    /** Some configs list several EOS ids; the first is the model's own. */
    private static int firstInt(Fields f, String field, int fallback) {
        JsonNode v = f.node.get(field);
        if (v != null && v.isArray()) {
            if (v.isEmpty() || !v.get(0).canConvertToInt()) {
                throw new CheckpointException(f.source + ": " + f.path(field) + " is an empty or non-integer list");
            }
            return v.get(0).asInt();
        }
        return f.optionalInt(field, fallback);
    }

    private static RopeScaling parseRopeScaling(Fields llm) {
        JsonNode node = llm.node.get("rope_scaling");
        if (node == null || node.isNull()) {
            return null;
        }
        Fields f = new Fields(node, llm.source, llm.path("rope_scaling") + ".");
        if (!node.isObject()) {
            throw new CheckpointException(llm.source + ": llm_config.rope_scaling must be an object with type and factor");
        }
        String type = node.hasNonNull("type") ? f.optionalText("type", null) : f.optionalText("rope_type", null);
        if (type == null || !(type.equals("dynamic") || type.equals("linear"))) {
            throw new CheckpointException(llm.source + ": llm_config.rope_scaling.type must be dynamic or linear, got " + type);
        }
        double factor = f.optionalDouble("factor", Double.NaN);
        if (!(factor >= 1.0)) {
            throw new CheckpointException(llm.source + ": llm_config.rope_scaling.factor must be a number >= 1, got " + node.get("factor"));
        }
        return new RopeScaling(type, factor);
    }

    private void validate(String source) {
        LlmConfig l = llm;
        requirePositive(source, "llm_config.hidden_size", l.hiddenSize());
        requirePositive(source, "llm_config.intermediate_size", l.intermediateSize());
        requirePositive(source, "llm_config.num_hidden_layers", l.numLayers());
        requirePositive(source, "llm_config.num_attention_heads", l.numHeads());
        requirePositive(source, "llm_config.num_key_value_heads", l.numKvHeads());
        requirePositive(source, "llm_config.head_dim", l.headDim());
        requirePositive(source, "llm_config.vocab_size", l.vocabSize());
        requirePositive(source, "llm_config.max_position_embeddings", l.maxPositionEmbeddings());
        if (l.numHeads() % l.numKvHeads() != 0) {
            throw new CheckpointException(source + ": llm_config.num_attention_heads " + l.numHeads()
                    + " is not a multiple of num_key_value_heads " + l.numKvHeads());
        }
        if (l.headDim() % 2 != 0) {
            throw new CheckpointException(source + ": head dimension " + l.headDim() + " is odd; rotate-half RoPE needs an even one (spec §6)");
        }
        if (!(l.rmsNormEps() > 0) || !(l.ropeTheta() > 0)) {
            throw new CheckpointException(source + ": llm_config.rms_norm_eps and rope_theta must be positive, got "
                    + l.rmsNormEps() + " and " + l.ropeTheta());
        }
        for (int id : new int[] {l.bosTokenId(), l.eosTokenId()}) {
            if (id < 0 || id >= l.vocabSize()) {
                throw new CheckpointException(source + ": llm_config bos/eos token id " + id + " is outside the vocabulary of " + l.vocabSize());
            }
        }
        requirePositive(source, "vision_config.patch_size", patchSize);
        requirePositive(source, "vision_config.image_size", visionImageSize);
        requirePositive(source, "force_image_size", imageSize);
        requirePositive(source, "vision_config.num_channels", numChannels);
        if (imageSize % patchSize != 0 || visionImageSize % patchSize != 0) {
            throw new CheckpointException(source + ": image sizes " + imageSize + " (force_image_size) and " + visionImageSize
                    + " (vision_config.image_size) must be multiples of patch_size " + patchSize);
        }
        if (!(downsampleRatio > 0 && downsampleRatio <= 1) || Math.abs(downsampleScale() * downsampleRatio - 1.0) > 1e-9) {
            throw new CheckpointException(source + ": downsample_ratio " + downsampleRatio + " must be 1/k for a whole k (spec §4 pixel shuffle)");
        }
        if (visionGrid() % downsampleScale() != 0) {
            throw new CheckpointException(source + ": the " + visionGrid() + "x" + visionGrid() + " patch grid is not divisible by the pixel-shuffle factor "
                    + downsampleScale());
        }
        if (!psVersion.equals("v1") && !psVersion.equals("v2")) {
            throw new CheckpointException(source + ": ps_version " + psVersion + " is not supported (v1 or v2, spec §4)");
        }
        if (selectLayer != -1) {
            throw new CheckpointException(source + ": select_layer is " + selectLayer + "; Mono-InternVL requires -1 (spec §2)");
        }
        if (minDynamicPatch < 1 || maxDynamicPatch < minDynamicPatch) {
            throw new CheckpointException(source + ": min_dynamic_patch " + minDynamicPatch + " / max_dynamic_patch " + maxDynamicPatch
                    + " must satisfy 1 <= min <= max");
        }
    }

    private static void requirePositive(String source, String field, long v) {
        if (v <= 0) {
            throw new CheckpointException(source + ": " + field + " must be positive, got " + v);
        }
    }

    /** Pixel-shuffle factor k = 1 / downsample_ratio (2 for the 2B model). */
    public int downsampleScale() {
        return (int) Math.round(1.0 / downsampleRatio);
    }

    /** Patches per side of one tile at {@link #imageSize()}. */
    public int visionGrid() {
        return imageSize / patchSize;
    }

    /** Patches per side the position table was trained for; differs from {@link #visionGrid()} when force_image_size does. */
    public int positionGrid() {
        return visionImageSize / patchSize;
    }

    /** Vision embeddings per tile after pixel shuffle: (imageSize/patchSize)^2 * downsampleRatio^2 (256 for the 2B model). */
    public int tokensPerTile() {
        int side = visionGrid() / downsampleScale();
        return side * side;
    }

    /** Whether pixel shuffle uses the v1 (transposed) token order (spec §4). */
    public boolean pixelShuffleV1() {
        return psVersion.equals("v1");
    }

    /** Typed access to one JSON object with messages that name the file and the field. */
    private record Fields(JsonNode node, String source, String prefix) {
        Fields object(String field) {
            JsonNode v = node.get(field);
            if (v == null || !v.isObject()) {
                throw new CheckpointException(source + ": " + path(field) + " is missing or not an object");
            }
            return new Fields(v, source, path(field) + ".");
        }

        String path(String field) {
            return prefix + field;
        }

        int requiredInt(String field) {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                throw new CheckpointException(source + ": required field " + path(field) + " is missing");
            }
            return toInt(field, v);
        }

        int optionalInt(String field, int fallback) {
            JsonNode v = node.get(field);
            return v == null || v.isNull() ? fallback : toInt(field, v);
        }

        private int toInt(String field, JsonNode v) {
            if (!v.isIntegralNumber() || !v.canConvertToInt()) {
                throw new CheckpointException(source + ": " + path(field) + " must be an integer, got " + v);
            }
            return v.asInt();
        }

        double optionalDouble(String field, double fallback) {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isNumber()) {
                throw new CheckpointException(source + ": " + path(field) + " must be a number, got " + v);
            }
            return v.asDouble();
        }

        boolean optionalBoolean(String field, boolean fallback) {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isBoolean()) {
                throw new CheckpointException(source + ": " + path(field) + " must be true or false, got " + v);
            }
            return v.asBoolean();
        }

        String optionalText(String field, String fallback) {
            JsonNode v = node.get(field);
            if (v == null || v.isNull()) {
                return fallback;
            }
            if (!v.isTextual()) {
                throw new CheckpointException(source + ": " + path(field) + " must be a string, got " + v);
            }
            return v.asText();
        }
    }
}

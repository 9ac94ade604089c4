package io.monostream.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.monostream.checkpoint.Checkpoint;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a Mono-InternVL v1 checkpoint of any size with random BF16 weights in the Hugging Face
 * layout (config.json plus one model.safetensors, spec §2), streamed to disk so multi-GB files
 * need no heap. For benchmarks and memory tests; never commit its output. Weights are uniform
 * with standard deviation 1/√fan-in (norm weights 1), which keeps activations finite.
 */
public final class RandomCheckpoint {

    /** Model dimensions; tiles are {@code imageSize}² pixels of 14-pixel patches, pixel shuffle 0.5. */
    public record Size(int visionHidden, int hidden, int intermediate, int layers, int heads, int kvHeads, int vocab,
            int imageSize) {
        /** hidden 1024, 8 layers, 8 query / 4 KV heads of 128, 448-pixel tiles of 256 tokens. */
        public static Size midSize() {
            return new Size(1024, 1024, 4096, 8, 8, 4, 32768, 448);
        }

        /** The Mono-InternVL-2B shape (~3B parameters with both experts). */
        public static Size mono2b() {
            return new Size(2048, 2048, 8192, 24, 16, 8, 92553, 448);
        }

        int headDim() {
            return hidden / heads;
        }
    }

    private record Entry(String name, long[] shape, float scale, boolean ones) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private RandomCheckpoint() {
    }

    /** Writes config.json and model.safetensors into {@code dir}; returns {@code dir}. */
    public static Path write(Path dir, Size size, long seed) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(Checkpoint.CONFIG_FILE), config(size).toPrettyString());
        List<Entry> entries = entries(size);
        writeSafetensors(dir.resolve(Checkpoint.SINGLE_FILE), entries, seed);
        return dir;
    }

    private static List<Entry> entries(Size s) {
        int patch = 14;
        int grid = s.imageSize() / patch;
        int c = s.visionHidden();
        int h = s.hidden();
        int qkv = (s.heads() + 2 * s.kvHeads()) * s.headDim();
        List<Entry> e = new ArrayList<>();
        e.add(random("vision_model.embeddings.patch_embedding.weight", 3 * patch * patch, c, 3, patch, patch));
        e.add(random("vision_model.embeddings.patch_embedding.bias", 1, c));
        e.add(random("vision_model.embeddings.position_embedding", 1, 1, grid * grid + 1, c));
        e.add(random("vision_model.embeddings.class_embedding", 1, 1, 1, c));
        e.add(ones("mlp1.0.weight", 4 * c));
        e.add(random("mlp1.0.bias", 1 << 20, 4 * c));
        e.add(random("mlp1.1.weight", 4 * c, h, 4 * c));
        e.add(random("mlp1.1.bias", 1 << 20, h));
        e.add(random("mlp1.3.weight", h, h, h));
        e.add(random("mlp1.3.bias", 1 << 20, h));
        e.add(random("language_model.model.tok_embeddings.weight", 1, s.vocab(), h));
        e.add(ones("language_model.model.norm.weight", h));
        e.add(random("language_model.output.weight", h, s.vocab(), h));
        for (int i = 0; i < s.layers(); i++) {
            String l = "language_model.model.layers." + i + ".";
            e.add(ones(l + "attention_norm.weight", h));
            e.add(ones(l + "ffn_norm.weight", h));
            e.add(random(l + "attention.wqkv.weight", h, qkv, h));
            e.add(random(l + "attention.wo.weight", h, h, h));
            for (String ffn : new String[] {"feed_forward.", "feed_forward_ve."}) {
                e.add(random(l + ffn + "w1.weight", h, s.intermediate(), h));
                e.add(random(l + ffn + "w3.weight", h, s.intermediate(), h));
                e.add(random(l + ffn + "w2.weight", s.intermediate(), h, s.intermediate()));
            }
        }
        return e;
    }

    private static Entry random(String name, int fanIn, long... shape) {
        return new Entry(name, shape, (float) Math.sqrt(3.0 / fanIn), false);
    }

    private static Entry ones(String name, long... shape) {
        return new Entry(name, shape, 1f, true);
    }

    private static void writeSafetensors(Path file, List<Entry> entries, long seed) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Map<String, Object> header = new LinkedHashMap<>();
        long offset = 0;
        for (Entry e : entries) {
            long bytes = e.elements() * 2;
            header.put(e.name(), Map.of("dtype", "BF16", "shape", e.shape(), "data_offsets", new long[] {offset, offset + bytes}));
            offset += bytes;
        }
        byte[] text = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (text.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(text);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        SplittableRandom random = new SplittableRandom(seed);
        ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            while (head.hasRemaining()) {
                out.write(head);
            }
            for (Entry e : entries) {
                short one = (short) (Float.floatToRawIntBits(1f) >>> 16);
                for (long i = 0, n = e.elements(); i < n; i++) {
                    short bits = e.ones() ? one
                            : (short) (Float.floatToRawIntBits((float) ((random.nextDouble() * 2 - 1) * e.scale())) >>> 16);
                    chunk.putShort(bits);
                    if (!chunk.hasRemaining()) {
                        drain(chunk, out);
                    }
                }
            }
            drain(chunk, out);
        }
    }

    private static void drain(ByteBuffer chunk, FileChannel out) throws IOException {
        chunk.flip();
        while (chunk.hasRemaining()) {
            out.write(chunk);
        }
        chunk.clear();
    }

    private static ObjectNode config(Size s) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        root.putArray("architectures").add("InternVLChatModel");
        root.put("downsample_ratio", 0.5);
        root.put("dynamic_image_size", true);
        root.put("force_image_size", s.imageSize());
        root.put("max_dynamic_patch", 12);
        root.put("min_dynamic_patch", 1);
        root.put("ps_version", "v2");
        root.put("select_layer", -1);
        root.put("template", "internlm2-chat");
        root.put("use_thumbnail", true);
        ObjectNode llm = root.putObject("llm_config");
        llm.putArray("architectures").add("InternLM2VEForCausalLM");
        llm.put("model_type", "internlm2ve");
        llm.put("hidden_size", s.hidden());
        llm.put("intermediate_size", s.intermediate());
        llm.put("num_hidden_layers", s.layers());
        llm.put("num_attention_heads", s.heads());
        llm.put("num_key_value_heads", s.kvHeads());
        llm.put("vocab_size", s.vocab());
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
        vision.put("image_size", s.imageSize());
        vision.put("patch_size", 14);
        vision.put("hidden_size", s.visionHidden());
        return root;
    }
}

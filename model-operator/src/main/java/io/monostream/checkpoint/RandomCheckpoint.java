package io.monostream.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Writes a random-weight Mono-InternVL checkpoint in the Hugging Face layout (config.json, one
 * BF16 model.safetensors and, where the jar bundles the demo model, its tokenizer files),
 * streaming the weights so a full-size 2B-shaped checkpoint (~6 GB) needs no more memory than
 * one buffer. For benchmarks and load tests; the text such a model writes means nothing.
 */
public final class RandomCheckpoint {
    /** The shape of the model to write. */
    public record Shape(int visionHidden, int hidden, int intermediate, int layers, int heads, int kvHeads,
            int vocab, int imageSize, int maxTiles) {
        /** The Mono-InternVL-2B shape (spec §2). */
        public static Shape monoInternVl2B() {
            return new Shape(1024, 2048, 8192, 24, 16, 8, 92553, 448, 12);
        }

        /** The benchmark's mid-size shape: real tiles (256 tokens), 8 layers, GQA, the real vocabulary. */
        public static Shape midSize() {
            return new Shape(1024, 1024, 4096, 8, 8, 4, 92553, 448, 12);
        }

        public int headDim() {
            return hidden / heads;
        }
    }

    private static final String TOKENIZER_RESOURCES = "/io/monostream/demo/model/";
    private static final String[] TOKENIZER_FILES = {
        "tokenizer.model", "added_tokens.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"
    };

    private record Tensor(String name, long[] shape, float std, float mean) {
        long elements() {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            return n;
        }
    }

    private RandomCheckpoint() {}

    /** Writes the checkpoint into {@code dir} (created if needed) and returns the weight bytes written. */
    public static long write(Path dir, Shape s, long seed) throws IOException {
        Files.createDirectories(dir);
        writeConfig(dir, s);
        for (String f : TOKENIZER_FILES) {
            try (InputStream in = RandomCheckpoint.class.getResourceAsStream(TOKENIZER_RESOURCES + f)) {
                if (in != null) { // without the demo model on the class path: weights and config only
                    Files.copy(in, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
                }
            }
        }
        return writeWeights(dir.resolve("model.safetensors"), tensors(s), seed);
    }

    private static List<Tensor> tensors(Shape s) {
        List<Tensor> t = new ArrayList<>();
        int c = s.visionHidden();
        int grid = s.imageSize() / 14;
        float linear = 0.02f;
        t.add(new Tensor("vision_model.embeddings.patch_embedding.weight", new long[] {c, 3, 14, 14}, linear, 0));
        t.add(new Tensor("vision_model.embeddings.patch_embedding.bias", new long[] {c}, linear, 0));
        t.add(new Tensor("vision_model.embeddings.position_embedding", new long[] {1, (long) grid * grid + 1, c}, linear, 0));
        t.add(new Tensor("vision_model.embeddings.class_embedding", new long[] {1, 1, c}, linear, 0));
        t.add(new Tensor("mlp1.0.weight", new long[] {4L * c}, 0.05f, 1));
        t.add(new Tensor("mlp1.0.bias", new long[] {4L * c}, linear, 0));
        t.add(new Tensor("mlp1.1.weight", new long[] {s.hidden(), 4L * c}, linear, 0));
        t.add(new Tensor("mlp1.1.bias", new long[] {s.hidden()}, linear, 0));
        t.add(new Tensor("mlp1.3.weight", new long[] {s.hidden(), s.hidden()}, linear, 0));
        t.add(new Tensor("mlp1.3.bias", new long[] {s.hidden()}, linear, 0));
        String lm = "language_model.model.";
        t.add(new Tensor(lm + "tok_embeddings.weight", new long[] {s.vocab(), s.hidden()}, linear, 0));
        for (int i = 0; i < s.layers(); i++) {
            String p = lm + "layers." + i + ".";
            t.add(new Tensor(p + "attention_norm.weight", new long[] {s.hidden()}, 0.05f, 1));
            t.add(new Tensor(p + "ffn_norm.weight", new long[] {s.hidden()}, 0.05f, 1));
            t.add(new Tensor(p + "attention.wqkv.weight", new long[] {(long) (s.heads() + 2 * s.kvHeads()) * s.headDim(), s.hidden()}, linear, 0));
            t.add(new Tensor(p + "attention.wo.weight", new long[] {s.hidden(), s.hidden()}, linear, 0));
            for (String expert : new String[] {"feed_forward.", "feed_forward_ve."}) {
                t.add(new Tensor(p + expert + "w1.weight", new long[] {s.intermediate(), s.hidden()}, linear, 0));
                t.add(new Tensor(p + expert + "w3.weight", new long[] {s.intermediate(), s.hidden()}, linear, 0));
                t.add(new Tensor(p + expert + "w2.weight", new long[] {s.hidden(), s.intermediate()}, linear, 0));
            }
        }
        t.add(new Tensor(lm + "norm.weight", new long[] {s.hidden()}, 0.05f, 1));
        t.add(new Tensor("language_model.output.weight", new long[] {s.vocab(), s.hidden()}, linear, 0));
        return t;
    }

    private static long writeWeights(Path file, List<Tensor> tensors, long seed) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        header.putObject("__metadata__").put("format", "pt").put("generator", "monostream RandomCheckpoint");
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode n = header.putObject(t.name());
            n.put("dtype", "BF16");
            ArrayNode shape = n.putArray("shape");
            for (long d : t.shape()) {
                shape.add(d);
            }
            long bytes = t.elements() * 2;
            n.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] head = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        int padded = (head.length + 7) / 8 * 8;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer h = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            h.putLong(padded).put(head);
            while (h.hasRemaining()) {
                h.put((byte) ' ');
            }
            h.flip();
            writeFully(ch, h);
            ByteBuffer buf = ByteBuffer.allocateDirect(1 << 22).order(ByteOrder.LITTLE_ENDIAN);
            SplittableRandom random = new SplittableRandom(seed);
            for (Tensor t : tensors) {
                // uniform with the tensor's standard deviation: cheap, finite, and O(1) activations
                float halfWidth = (float) (t.std() * Math.sqrt(3));
                for (long left = t.elements(); left > 0; ) {
                    int n = (int) Math.min(left, buf.capacity() / 2);
                    for (int i = 0; i < n; i++) {
                        float v = t.mean() + halfWidth * (float) (2 * random.nextDouble() - 1);
                        buf.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
                    }
                    buf.flip();
                    writeFully(ch, buf);
                    buf.clear();
                    left -= n;
                }
            }
        }
        return offset;
    }

    private static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    private static void writeConfig(Path dir, Shape s) {
        Map<String, Object> llm = new LinkedHashMap<>();
        llm.put("architectures", List.of("InternLM2VEForCausalLM"));
        llm.put("model_type", "internlm2ve");
        llm.put("hidden_size", s.hidden());
        llm.put("intermediate_size", s.intermediate());
        llm.put("num_hidden_layers", s.layers());
        llm.put("num_attention_heads", s.heads());
        llm.put("num_key_value_heads", s.kvHeads());
        llm.put("vocab_size", s.vocab());
        llm.put("rms_norm_eps", 1e-5);
        llm.put("rope_theta", 1e6);
        llm.put("rope_scaling", Map.of("type", "dynamic", "factor", 2.0));
        llm.put("max_position_embeddings", 32768);
        llm.put("bias", false);
        llm.put("bos_token_id", 1);
        llm.put("eos_token_id", 2);
        llm.put("pad_token_id", 2);
        llm.put("tie_word_embeddings", false);
        Map<String, Object> vision = new LinkedHashMap<>();
        vision.put("model_type", "intern_vit_patch");
        vision.put("image_size", s.imageSize());
        vision.put("patch_size", 14);
        vision.put("hidden_size", s.visionHidden());
        vision.put("num_channels", 3);
        Map<String, Object> config = new LinkedHashMap<>();
        config.put("architectures", List.of("InternVLChatModel"));
        config.put("model_type", "internvl_chat");
        config.put("force_image_size", s.imageSize());
        config.put("downsample_ratio", 0.5);
        config.put("ps_version", "v2");
        config.put("select_layer", -1);
        config.put("template", "internlm2-chat");
        config.put("dynamic_image_size", true);
        config.put("use_thumbnail", true);
        config.put("min_dynamic_patch", 1);
        config.put("max_dynamic_patch", s.maxTiles());
        config.put("llm_config", llm);
        config.put("vision_config", vision);
        try {
            Files.writeString(dir.resolve("config.json"),
                    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(config));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

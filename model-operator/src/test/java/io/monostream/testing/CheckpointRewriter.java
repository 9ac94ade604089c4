package io.monostream.testing;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.SafetensorsWriter;
import io.monostream.checkpoint.TensorInfo;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * Rewrites a single-file test checkpoint: each tensor's raw bytes may be replaced, and the
 * config edited, so invariance tests can perturb weights or change the layout.
 */
public final class CheckpointRewriter {
    /** A tensor's bytes as stored; replace {@code data} (and shape) to change it. */
    public static final class Tensor {
        public final String name;
        public final String dtype;
        public long[] shape;
        public byte[] data;

        Tensor(String name, String dtype, long[] shape, byte[] data) {
            this.name = name;
            this.dtype = dtype;
            this.shape = shape;
            this.data = data;
        }
    }

    public interface TensorEdit {
        void apply(Tensor tensor);
    }

    private CheckpointRewriter() {}

    /** Rewrites {@code dir/model.safetensors} in place (dir must be a writable copy). */
    public static void rewrite(Path dir, TensorEdit edit, Consumer<ObjectNode> configEdit) throws IOException {
        SafetensorsWriter writer = new SafetensorsWriter();
        try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            for (String name : new TreeSet<>(checkpoint.tensorNames())) {
                TensorInfo info = checkpoint.info(name);
                byte[] data = checkpoint.segment(name).toArray(ValueLayout.JAVA_BYTE);
                Tensor t = new Tensor(name, info.dtype().name(), info.shape().clone(), data);
                edit.apply(t);
                writer.raw(t.name, t.dtype, t.shape, t.data);
            }
        }
        writer.write(dir.resolve("model.safetensors"));
        ObjectMapper json = new ObjectMapper();
        ObjectNode config = (ObjectNode) json.readTree(dir.resolve("config.json").toFile());
        configEdit.accept(config);
        Files.writeString(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(config));
    }

    /** Tensor names of every layer that match a suffix, e.g. ".feed_forward_ve.w2.weight". */
    public static boolean isLayerTensor(String name, List<String> suffixes) {
        return suffixes.stream().anyMatch(name::endsWith);
    }
}

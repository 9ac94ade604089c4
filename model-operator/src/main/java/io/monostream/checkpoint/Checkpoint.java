package io.monostream.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Mono-InternVL checkpoint directory in the Hugging Face layout (spec §2): {@code config.json} plus
 * either {@code model.safetensors} or the shards named by {@code model.safetensors.index.json}.
 * Opening maps every shard once and checks every expected tensor's shape against the config;
 * tensor data stays memory-mapped until {@link #close()}.
 *
 * <pre>{@code
 * try (Checkpoint ckpt = Checkpoint.open(Path.of("Mono-InternVL-2B"))) {
 *     int layers = ckpt.config().llm().numLayers();
 *     MemorySegment wqkv = ckpt.segment("language_model.model.layers.0.attention.wqkv.weight");
 * }
 * }</pre>
 */
public final class Checkpoint implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Checkpoint.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    public static final String CONFIG_FILE = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path directory;
    private final ModelConfig config;
    private final List<SafetensorsFile> files;
    private final Map<String, TensorInfo> tensors;
    private final Map<Path, SafetensorsFile> fileByPath;
    private final int visionHiddenSize;
    private final List<String> unexpectedKeys;

    private Checkpoint(Path directory, ModelConfig config, List<SafetensorsFile> files, Map<String, TensorInfo> tensors,
                       CheckpointValidator.Result validation) {
        this.directory = directory;
        this.config = config;
        this.files = files;
        this.tensors = Collections.unmodifiableMap(tensors);
        this.fileByPath = new LinkedHashMap<>();
        for (SafetensorsFile f : files) {
            fileByPath.put(f.path(), f);
        }
        this.visionHiddenSize = validation.visionHiddenSize();
        this.unexpectedKeys = validation.unexpectedKeys();
    }

    /**
     * Opens and validates the checkpoint in {@code dir}.
     *
     * @throws CheckpointException naming the file or directory for anything missing, malformed or mis-shaped
     */
    public static Checkpoint open(Path dir) {
        Path directory = dir.toAbsolutePath().normalize();
        if (!Files.isDirectory(directory)) {
            throw new CheckpointException("checkpoint directory not found: " + directory);
        }
        ModelConfig config = ModelConfig.load(directory.resolve(CONFIG_FILE));
        List<SafetensorsFile> files = new ArrayList<>();
        try {
            Map<String, TensorInfo> tensors;
            Path index = directory.resolve(INDEX_FILE);
            Path single = directory.resolve(SINGLE_FILE);
            if (Files.exists(index)) {
                tensors = openSharded(directory, index, files);
            } else if (Files.exists(single)) {
                SafetensorsFile f = SafetensorsFile.open(single);
                files.add(f);
                tensors = new LinkedHashMap<>(f.tensors());
            } else {
                throw new CheckpointException("no weights in " + directory + ": expected " + SINGLE_FILE + " or " + INDEX_FILE);
            }
            CheckpointValidator.Result validation = CheckpointValidator.validate(config, tensors, directory);
            Checkpoint checkpoint = new Checkpoint(directory, config, List.copyOf(files), tensors, validation);
            LOG.info("opened checkpoint {}: {} tensors in {} file(s), {} parameters", directory, tensors.size(), files.size(),
                    checkpoint.parameterCount());
            return checkpoint;
        } catch (RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    /** Every name in the index's weight_map comes from the shard it names; each shard is mapped once. */
    private static Map<String, TensorInfo> openSharded(Path directory, Path index, List<SafetensorsFile> files) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(index));
        } catch (IOException e) {
            throw new CheckpointException("cannot parse " + index + ": " + e.getMessage(), e);
        }
        JsonNode weightMap = root == null ? null : root.get("weight_map");
        if (weightMap == null || !weightMap.isObject()) {
            throw new CheckpointException(index + " has no weight_map object");
        }
        Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = weightMap.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            if (!e.getValue().isTextual()) {
                throw new CheckpointException(index + ": weight_map entry for " + name + " is not a file name");
            }
            String shardName = e.getValue().asText();
            Path shardPath = directory.resolve(shardName).normalize();
            if (!shardPath.getParent().equals(directory)) {
                throw new CheckpointException(index + ": shard " + shardName + " for " + name + " is outside " + directory);
            }
            SafetensorsFile shard = shards.get(shardName);
            if (shard == null) {
                if (!Files.isRegularFile(shardPath)) {
                    throw new CheckpointException("shard " + shardPath + " listed in " + index + " (for " + name + ") is missing");
                }
                shard = SafetensorsFile.open(shardPath);
                shards.put(shardName, shard);
                files.add(shard);
            }
            TensorInfo info = shard.tensors().get(name);
            if (info == null) {
                throw new CheckpointException("tensor " + name + " is listed in " + index + " for " + shardPath + " but that file does not contain it");
            }
            tensors.put(name, info);
        }
        // Keys a shard holds but the index forgot still belong to the state dict, as when the reference loads the shards.
        for (SafetensorsFile shard : files) {
            for (TensorInfo info : shard.tensors().values()) {
                TensorInfo indexed = tensors.get(info.name());
                if (indexed == null) {
                    LOG.warn("tensor {} in {} is not listed in {}", info.name(), shard.path(), index);
                    tensors.put(info.name(), info);
                } else if (!indexed.file().equals(info.file())) {
                    LOG.warn("tensor {} is in both {} and {}; using {} as the index says", info.name(), indexed.file(), info.file(), indexed.file());
                }
            }
        }
        return tensors;
    }

    public ModelConfig config() {
        return config;
    }

    public Path directory() {
        return directory;
    }

    /** The directory's name, e.g. {@code Mono-InternVL-2B}. */
    public String modelName() {
        Path name = directory.getFileName();
        return name == null ? directory.toString() : name.toString();
    }

    /** Vision width C, read from the patch embedding's shape (spec §2). */
    public int visionHiddenSize() {
        return visionHiddenSize;
    }

    /** All tensor names in the checkpoint, including unexpected keys and rotary caches. */
    public Set<String> tensorNames() {
        return tensors.keySet();
    }

    /** @throws CheckpointException naming the tensor and the directory when absent */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException("tensor " + name + " not found in checkpoint " + directory);
        }
        return info;
    }

    /** A read-only slice with the tensor's raw little-endian data; valid until {@link #close()}. */
    public MemorySegment segment(String name) {
        TensorInfo info = info(name);
        return fileByPath.get(info.file()).slice(info);
    }

    /** Copies the tensor's stored bytes into {@code destination} without mapping them into this process. */
    public void readInto(String name, MemorySegment destination) {
        TensorInfo info = info(name);
        fileByPath.get(info.file()).readInto(info, destination);
    }

    /** The tensor widened to fp32: F32 as stored, BF16 and F16 exactly. */
    public float[] readFloats(String name) {
        TensorInfo info = info(name);
        return SafetensorsFile.readFloats(info, fileByPath.get(info.file()).slice(info));
    }

    /** Keys that are neither expected nor rotary caches (spec §7: possibly 1.5 attention experts); they were logged at open. */
    public List<String> unexpectedKeys() {
        return unexpectedKeys;
    }

    /** Elements of every tensor except rotary caches (spec §10 invariant 12: 3,111,355,392 for the 2B model). */
    public long parameterCount() {
        long n = 0;
        for (TensorInfo info : tensors.values()) {
            if (!CheckpointValidator.isRotaryCache(info.name())) {
                n += info.elementCount();
            }
        }
        return n;
    }

    /** The mapped files, for callers that hand raw pointers to native code. */
    public List<SafetensorsFile> files() {
        return files;
    }

    /** Unmaps every file. */
    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}

package io.monostream.checkpoint;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One memory-mapped safetensors file (spec §2): a u64-LE header length N, an N-byte JSON header
 * ({@code dtype}, {@code shape}, {@code data_offsets} relative to the data start, optional
 * {@code __metadata__}), then the raw little-endian data. The whole file is mapped into one
 * {@link MemorySegment}, so shards larger than 2 GiB work; tensors are read-only slices of it.
 *
 * <pre>{@code
 * try (SafetensorsFile f = SafetensorsFile.open(path)) {
 *     MemorySegment w = f.segment("mlp1.1.weight");
 * }
 * }</pre>
 *
 * Slices are valid until {@link #close()}.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation refuses headers above 100 MB; a larger one is a corrupt length. */
    static final long MAX_HEADER_BYTES = 100L << 20;

    private static final ObjectMapper JSON = new ObjectMapper();
    static final ValueLayout.OfFloat F32_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfShort U16_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapped;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;

    private SafetensorsFile(Path path, Arena arena, MemorySegment mapped, Map<String, TensorInfo> tensors, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.mapped = mapped;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Maps and validates {@code path}.
     *
     * @throws CheckpointException naming the file for a missing, truncated or malformed file
     */
    public static SafetensorsFile open(Path path) {
        long size;
        try {
            size = Files.size(path);
        } catch (NoSuchFileException e) {
            throw new CheckpointException("safetensors file not found: " + path, e);
        } catch (IOException e) {
            throw new CheckpointException("cannot read safetensors file " + path + ": " + e.getMessage(), e);
        }
        if (size < Long.BYTES) {
            throw new CheckpointException("truncated safetensors file " + path + ": " + size + " bytes, shorter than the 8-byte header length");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLength = mapped.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerLength < 0 || headerLength > size - Long.BYTES) {
                throw new CheckpointException("truncated or corrupt safetensors file " + path + ": header length "
                        + Long.toUnsignedString(headerLength) + " exceeds the " + (size - Long.BYTES) + " bytes after it");
            }
            if (headerLength > MAX_HEADER_BYTES) {
                throw new CheckpointException("corrupt safetensors file " + path + ": header length " + headerLength + " is above " + MAX_HEADER_BYTES);
            }
            byte[] header = mapped.asSlice(Long.BYTES, headerLength).toArray(ValueLayout.JAVA_BYTE);
            long dataStart = Long.BYTES + headerLength;
            JsonNode root = parseHeader(path, header);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, TensorInfo> tensors = parseTensors(path, root, dataStart, size - dataStart, metadata);
            return new SafetensorsFile(path, arena, mapped, Collections.unmodifiableMap(tensors), Collections.unmodifiableMap(metadata));
        } catch (IOException e) {
            arena.close();
            throw new CheckpointException("cannot map safetensors file " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static JsonNode parseHeader(Path path, byte[] header) {
        JsonNode root;
        try {
            root = JSON.readTree(header);
        } catch (JsonProcessingException e) {
            throw new CheckpointException("bad safetensors header in " + path + ": not JSON (" + e.getOriginalMessage() + ")", e);
        } catch (IOException e) {
            throw new CheckpointException("bad safetensors header in " + path + ": " + e.getMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointException("bad safetensors header in " + path + ": expected a JSON object, got "
                    + abbreviate(new String(header, StandardCharsets.UTF_8)));
        }
        return root;
    }

    private static Map<String, TensorInfo> parseTensors(Path path, JsonNode root, long dataStart, long dataLength, Map<String, String> metadata) {
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>(); // {begin, end, index} relative to the data start
        List<String> names = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String name = e.getKey();
            JsonNode node = e.getValue();
            if (name.equals("__metadata__")) {
                readMetadata(path, node, metadata);
                continue;
            }
            String where = "tensor " + name + " in " + path;
            if (!node.isObject()) {
                throw new CheckpointException("bad safetensors header: " + where + " is not an object");
            }
            DType dtype;
            try {
                dtype = DType.fromSafetensors(requireText(node, "dtype", where));
            } catch (IllegalArgumentException ex) {
                throw new CheckpointException(where + ": " + ex.getMessage(), ex);
            }
            long[] shape = readLongs(node.get("shape"), "shape", where, -1);
            long[] offsets = readLongs(node.get("data_offsets"), "data_offsets", where, 2);
            long begin = offsets[0];
            long end = offsets[1];
            if (begin > end || end > dataLength) {
                throw new CheckpointException("bad safetensors header: " + where + " has data_offsets [" + begin + ", " + end
                        + "] outside the " + dataLength + " data bytes (truncated file?)");
            }
            long expected;
            try {
                expected = Math.multiplyExact(TensorInfo.elementCount(shape), dtype.byteSize());
            } catch (ArithmeticException ex) {
                throw new CheckpointException("bad safetensors header: " + where + " has an overflowing shape", ex);
            }
            if (end - begin != expected) {
                throw new CheckpointException("bad safetensors header: " + where + " is " + dtype + " " + java.util.Arrays.toString(shape)
                        + " (" + expected + " bytes) but data_offsets [" + begin + ", " + end + "] span " + (end - begin) + " bytes");
            }
            ranges.add(new long[] {begin, end, names.size()});
            names.add(name);
            tensors.put(name, new TensorInfo(name, dtype, shape, path, dataStart + begin, end - begin));
        }
        ranges.sort(Comparator.<long[]>comparingLong(r -> r[0]).thenComparingLong(r -> r[1]));
        for (int i = 1; i < ranges.size(); i++) {
            long[] prev = ranges.get(i - 1);
            long[] cur = ranges.get(i);
            if (cur[0] < prev[1]) {
                throw new CheckpointException("bad safetensors header in " + path + ": tensors " + names.get((int) prev[2]) + " and "
                        + names.get((int) cur[2]) + " overlap at data bytes [" + cur[0] + ", " + Math.min(prev[1], cur[1]) + ")");
            }
        }
        return tensors;
    }

    private static void readMetadata(Path path, JsonNode node, Map<String, String> metadata) {
        if (!node.isObject()) {
            throw new CheckpointException("bad safetensors header in " + path + ": __metadata__ is not an object");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw new CheckpointException("bad safetensors header in " + path + ": __metadata__ value for " + m.getKey() + " is not a string");
            }
            metadata.put(m.getKey(), m.getValue().asText());
        }
    }

    private static String requireText(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null || !v.isTextual()) {
            throw new CheckpointException("bad safetensors header: " + where + " has no string field " + field);
        }
        return v.asText();
    }

    private static long[] readLongs(JsonNode array, String field, String where, int requiredLength) {
        if (array == null || !array.isArray() || (requiredLength >= 0 && array.size() != requiredLength)) {
            throw new CheckpointException("bad safetensors header: " + where + " has no valid " + field
                    + (requiredLength >= 0 ? " (expected " + requiredLength + " integers)" : ""));
        }
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode v = array.get(i);
            if (!v.canConvertToLong() || !v.isIntegralNumber() || v.asLong() < 0) {
                throw new CheckpointException("bad safetensors header: " + where + " has a bad " + field + " entry " + v);
            }
            out[i] = v.asLong();
        }
        return out;
    }

    private static String abbreviate(String s) {
        return s.length() <= 80 ? s : s.substring(0, 80) + "...";
    }

    /** Every tensor in the file, in header order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    /** The header's {@code __metadata__}, empty when absent. */
    public Map<String, String> metadata() {
        return metadata;
    }

    public Path path() {
        return path;
    }

    /** A read-only slice holding the tensor's raw little-endian data. */
    public MemorySegment segment(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException("tensor " + name + " not found in " + path);
        }
        return slice(info);
    }

    /**
     * Copies a tensor's stored bytes into {@code destination} with positional reads rather than
     * through the mapping, so loading weights into their own memory does not also leave the
     * file's pages mapped into this process (resident memory stays at one copy of the weights).
     */
    public void readInto(String name, MemorySegment destination) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException("tensor " + name + " not found in " + path);
        }
        readInto(info, destination);
    }

    void readInto(TensorInfo info, MemorySegment destination) {
        if (destination.byteSize() < info.byteLength()) {
            throw new IllegalArgumentException("destination of " + destination.byteSize() + " bytes is too small for "
                    + info.name() + " (" + info.byteLength() + " bytes)");
        }
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long done = 0;
            while (done < info.byteLength()) {
                long chunk = Math.min(info.byteLength() - done, 1L << 30);
                java.nio.ByteBuffer buffer = destination.asSlice(done, chunk).asByteBuffer();
                while (buffer.hasRemaining()) {
                    int n = channel.read(buffer, info.dataOffset() + done + buffer.position());
                    if (n < 0) {
                        throw new CheckpointException(path + " ended while reading tensor " + info.name());
                    }
                }
                done += chunk;
            }
        } catch (java.io.IOException e) {
            throw new CheckpointException("cannot read tensor " + info.name() + " from " + path + ": " + e.getMessage());
        }
    }

    MemorySegment slice(TensorInfo info) {
        return mapped.asSlice(info.dataOffset(), info.byteLength()).asReadOnly();
    }

    /** The tensor widened to fp32: F32 as stored, BF16 and F16 exactly. */
    public float[] readFloats(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            throw new CheckpointException("tensor " + name + " not found in " + path);
        }
        return readFloats(info, slice(info));
    }

    static float[] readFloats(TensorInfo info, MemorySegment data) {
        long n = info.elementCount();
        if (n > Integer.MAX_VALUE - 8) {
            throw new CheckpointException("tensor " + info.name() + " in " + info.file() + " has " + n + " elements, too many for one float[]");
        }
        float[] out = new float[(int) n];
        switch (info.dtype()) {
            case F32 -> MemorySegment.copy(data, F32_LE, 0, out, 0, out.length);
            case BF16 -> {
                for (int i = 0; i < out.length; i++) {
                    // bf16 is the upper half of an fp32: widening is a shift, exact for every value
                    out[i] = Float.intBitsToFloat((data.getAtIndex(U16_LE, i) & 0xFFFF) << 16);
                }
            }
            case F16 -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = Float.float16ToFloat(data.getAtIndex(U16_LE, i));
                }
            }
        }
        return out;
    }

    /** Unmaps the file; every slice handed out becomes invalid. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}

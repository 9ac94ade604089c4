package io.monostream.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes small safetensors files for tests: tensors in insertion order, data packed after an
 * 8-byte-aligned header. Raw bytes are given per tensor, so tests can write any bit pattern.
 */
public final class SafetensorsWriter {
    private record Entry(String name, String dtype, long[] shape, byte[] data) {}

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter f32(String name, long[] shape, float... values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) {
            b.putFloat(v);
        }
        return raw(name, "F32", shape, b.array());
    }

    /** A tensor filled with a deterministic pattern, for shape tests where values do not matter. */
    public SafetensorsWriter bf16Filled(String name, long... shape) {
        long n = TensorInfo.elementCount(shape);
        byte[] data = new byte[Math.toIntExact(n * 2)];
        for (int i = 0; i < n; i++) {
            short bits = (short) (Float.floatToRawIntBits((i % 7) * 0.125f) >>> 16);
            data[2 * i] = (byte) bits;
            data[2 * i + 1] = (byte) (bits >> 8);
        }
        return raw(name, "BF16", shape, data);
    }

    public SafetensorsWriter halfBits(String name, String dtype, long[] shape, short... bits) {
        ByteBuffer b = ByteBuffer.allocate(bits.length * 2).order(ByteOrder.LITTLE_ENDIAN);
        for (short s : bits) {
            b.putShort(s);
        }
        return raw(name, dtype, shape, b.array());
    }

    public SafetensorsWriter raw(String name, String dtype, long[] shape, byte[] data) {
        entries.add(new Entry(name, dtype, shape.clone(), data));
        return this;
    }

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public boolean contains(String name) {
        return entries.stream().anyMatch(e -> e.name.equals(name));
    }

    /** The JSON header exactly as {@link #write} would store it (before padding). */
    public String headerJson() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = root.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode t = root.putObject(e.name);
            t.put("dtype", e.dtype);
            ArrayNode shape = t.putArray("shape");
            for (long d : e.shape) {
                shape.add(d);
            }
            t.putArray("data_offsets").add(offset).add(offset + e.data.length);
            offset += e.data.length;
        }
        return root.toString();
    }

    public Path write(Path file) throws IOException {
        byte[] header = headerJson().getBytes(StandardCharsets.UTF_8);
        int padded = (header.length + 7) / 8 * 8; // spaces pad the header, as the reference writer does
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(padded).put(header);
            while (head.hasRemaining()) {
                head.put((byte) ' ');
            }
            head.flip();
            ch.write(head);
            for (Entry e : entries) {
                ch.write(ByteBuffer.wrap(e.data));
            }
        }
        return file;
    }

    /** Writes an arbitrary header (for malformed-header tests) followed by {@code dataBytes} zero bytes. */
    public static Path writeRawHeader(Path file, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(b.position(b.capacity()).flip());
        }
        return file;
    }
}

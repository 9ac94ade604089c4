package io.monostream.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Pins the safetensors reader: exact F32/BF16/F16 values, header validation errors that name the file, files over 2 GiB. */
class SafetensorsFileTest {
    @TempDir
    Path tmp;

    @Test
    void readsF32Bf16AndF16ValuesExactly() throws IOException {
        Path file = new SafetensorsWriter()
                .f32("f32", new long[] {2, 2}, 1.5f, -0.0f, Float.MIN_VALUE, 3.4028235e38f)
                // bf16 bits: 1.0, -2.5, 3.140625, smallest subnormal 2^-133, +inf, a NaN
                .halfBits("bf16", "BF16", new long[] {6}, (short) 0x3F80, (short) 0xC020, (short) 0x4049, (short) 0x0001, (short) 0x7F80, (short) 0x7FC1)
                // f16 bits: 1.0, 65504 (max), 2^-24 (smallest subnormal), -0.0, -inf
                .halfBits("f16", "F16", new long[] {5}, (short) 0x3C00, (short) 0x7BFF, (short) 0x0001, (short) 0x8000, (short) 0xFC00)
                .write(tmp.resolve("values.safetensors"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new float[] {1.5f, -0.0f, Float.MIN_VALUE, 3.4028235e38f}, f.readFloats("f32"));
            float[] bf = f.readFloats("bf16");
            assertEquals(1.0f, bf[0]);
            assertEquals(-2.5f, bf[1]);
            assertEquals(3.140625f, bf[2]);
            assertEquals(Math.scalb(1.0f, -133), bf[3]);
            assertEquals(Float.POSITIVE_INFINITY, bf[4]);
            assertTrue(Float.isNaN(bf[5]));
            float[] h = f.readFloats("f16");
            assertArrayEquals(new float[] {1.0f, 65504f, Math.scalb(1.0f, -24), -0.0f, Float.NEGATIVE_INFINITY}, h);
            assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(h[3]));
            assertEquals(DType.BF16, f.tensors().get("bf16").dtype());
            assertArrayEquals(new long[] {2, 2}, f.tensors().get("f32").shape());
        }
    }

    @Test
    void tensorOffsetsAreAbsoluteAndSlicesReadOnly() throws IOException {
        SafetensorsWriter w = new SafetensorsWriter().metadata("format", "pt").f32("a", new long[] {1}, 7f).f32("b", new long[] {2}, 8f, 9f);
        Path file = w.write(tmp.resolve("offsets.safetensors"));
        long headerLength = (w.headerJson().getBytes(StandardCharsets.UTF_8).length + 7) / 8 * 8;
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(Map.of("format", "pt"), f.metadata());
            assertEquals(8 + headerLength + 4, f.tensors().get("b").dataOffset());
            assertEquals(8, f.tensors().get("b").byteLength());
            MemorySegment b = f.segment("b");
            assertEquals(9f, b.get(SafetensorsFile.F32_LE, 4));
            assertTrue(b.isReadOnly());
            assertThrows(IllegalArgumentException.class, () -> b.set(ValueLayout.JAVA_BYTE, 0, (byte) 1));
            assertEquals(file, f.path());
            CheckpointException missing = assertThrows(CheckpointException.class, () -> f.segment("c"));
            assertTrue(missing.getMessage().contains("c") && missing.getMessage().contains(file.toString()));
        }
    }

    @Test
    void truncatedDataNamesTheFile() throws IOException {
        Path file = new SafetensorsWriter().f32("w", new long[] {4}, 1, 2, 3, 4).write(tmp.resolve("cut.safetensors"));
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 3);
        }
        assertError(file, "w", "outside");
    }

    @Test
    void fileShorterThanTheLengthFieldIsTruncated() throws IOException {
        Path file = Files.write(tmp.resolve("tiny.safetensors"), new byte[] {1, 2, 3});
        assertError(file, "truncated");
        Path empty = Files.write(tmp.resolve("empty.safetensors"), new byte[0]);
        assertError(empty, "truncated");
    }

    @Test
    void headerLengthBeyondTheFileIsRejected() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1000).putLong(0);
        Path file = Files.write(tmp.resolve("long-header.safetensors"), b.array());
        assertError(file, "header length 1000");
        ByteBuffer neg = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-8).putLong(0);
        assertError(Files.write(tmp.resolve("negative.safetensors"), neg.array()), "header length");
    }

    @Test
    void headerThatIsNotJsonIsRejected() throws IOException {
        assertError(SafetensorsWriter.writeRawHeader(tmp.resolve("bad.safetensors"), "{\"w\": {\"dtype\": ", 0), "not JSON");
        assertError(SafetensorsWriter.writeRawHeader(tmp.resolve("array.safetensors"), "[1, 2]", 0), "JSON object");
        assertError(SafetensorsWriter.writeRawHeader(tmp.resolve("noshape.safetensors"),
                "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4), "w", "shape");
    }

    @Test
    void unsupportedDtypeNamesTensorAndFile() throws IOException {
        Path file = new SafetensorsWriter().raw("ids", "I64", new long[] {1}, new byte[8]).write(tmp.resolve("i64.safetensors"));
        assertError(file, "ids", "I64");
    }

    @Test
    void offsetsInconsistentWithDtypeAndShapeAreRejected() throws IOException {
        Path file = SafetensorsWriter.writeRawHeader(tmp.resolve("size.safetensors"),
                "{\"w\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8);
        assertError(file, "w", "6 bytes", "8 bytes");
    }

    @Test
    void overlappingTensorsAreRejected() throws IOException {
        Path file = SafetensorsWriter.writeRawHeader(tmp.resolve("overlap.safetensors"),
                "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                        + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12);
        assertError(file, "a", "b", "overlap");
    }

    @Test
    void slicesDieWithTheFile() throws IOException {
        Path file = new SafetensorsWriter().f32("w", new long[] {1}, 5f).write(tmp.resolve("closed.safetensors"));
        SafetensorsFile f = SafetensorsFile.open(file);
        MemorySegment w = f.segment("w");
        f.close();
        f.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> w.get(SafetensorsFile.F32_LE, 0));
    }

    /** A sparse file whose second tensor starts beyond 2^31 bytes: the mapping must reach it. */
    @Test
    void readsTensorsBeyondTwoGibibytes() throws IOException {
        long padElements = (1L << 29) + 16; // 2^31 + 64 bytes of F32
        String header = "{\"pad\": {\"dtype\": \"F32\", \"shape\": [" + padElements + "], \"data_offsets\": [0, " + padElements * 4 + "]},"
                + " \"tail\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [" + padElements * 4 + ", " + (padElements * 4 + 16) + "]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        Path file = tmp.resolve("big.safetensors");
        long tailAt = 8 + h.length + padElements * 4;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, StandardOpenOption.SPARSE)) {
            ch.write(ByteBuffer.allocate(8 + h.length).order(ByteOrder.LITTLE_ENDIAN).putLong(h.length).put(h).flip());
            ByteBuffer tail = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.25f).putFloat(-2f).putFloat(1e-3f).putFloat(42f);
            ch.write(tail.flip(), tailAt); // leaves a hole: the file stays sparse on disk
        }
        assertTrue(Files.size(file) > (1L << 31) + 64);
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            TensorInfo tail = f.tensors().get("tail");
            assertEquals(tailAt, tail.dataOffset());
            assertArrayEquals(new float[] {1.25f, -2f, 1e-3f, 42f}, f.readFloats("tail"));
            MemorySegment pad = f.segment("pad");
            assertEquals(padElements * 4, pad.byteSize());
            assertEquals(0f, pad.get(SafetensorsFile.F32_LE, pad.byteSize() - 4));
        }
    }

    private static void assertError(Path file, String... fragments) {
        CheckpointException e = assertThrows(CheckpointException.class, () -> SafetensorsFile.open(file).close());
        assertTrue(e.getMessage().contains(file.toString()), () -> "message does not name the file: " + e.getMessage());
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), () -> "message lacks '" + fragment + "': " + e.getMessage());
        }
    }
}

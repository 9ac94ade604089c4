package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** Pins Tensor's ownership, zero-copy wrapping of memory and DJL conversions. */
class TensorTest {

    @Test
    void fromSegmentWrapsTheBytesWithoutCopying() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1f, 2f, 3f, 4f, 5f, 6f);
            try (Tensor t = Tensor.fromSegment(data, DType.F32, new long[] {2, 3})) {
                assertArrayEquals(new long[] {2, 3}, t.shape());
                assertEquals(DType.F32, t.dtype());
                assertEquals(Device.CPU, t.device());
                assertEquals(data.address(), t.dataPointer().address());
                data.setAtIndex(ValueLayout.JAVA_FLOAT, 5, 60f); // visible through the tensor: same bytes
                assertArrayEquals(new float[] {1, 2, 3, 4, 5, 60}, t.toFloatArray());
            }
        }
    }

    @Test
    void readOnlyMappedFileBytesBecomeATensorWithoutCopying(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
            throws java.io.IOException {
        java.nio.file.Path file = dir.resolve("weights.bin");
        java.nio.ByteBuffer bytes = java.nio.ByteBuffer.allocate(16 + 2 * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        bytes.position(16); // a header before the tensor, as in a safetensors file
        for (float v : new float[] {1f, 2f, -0.5f, 8f}) {
            bytes.putShort((short) (Float.floatToRawIntBits(v) >>> 16));
        }
        java.nio.file.Files.write(file, bytes.array());
        try (Arena arena = Arena.ofConfined();
             java.nio.channels.FileChannel ch = java.nio.channels.FileChannel.open(file)) {
            MemorySegment mapped = ch.map(java.nio.channels.FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            try (Tensor w = Tensor.fromSegment(mapped.asSlice(16, 8), DType.BF16, new long[] {2, 2});
                 Tensor x = Tensor.of(new float[] {1f, 1f}, 1, 2);
                 Tensor x16 = x.to(DType.BF16);
                 Tensor y = Dispatcher.call("aten::linear", "", x16, w, null)) {
                assertEquals(mapped.address() + 16, w.dataPointer().address());
                assertArrayEquals(new float[] {3f, 7.5f}, y.toFloatArray());
            }
        }
    }

    @Test
    void bf16BytesFromMemoryReadBackAsTheirFloatValues() {
        float[] values = {1f, -2.5f, 0.15625f, 3e5f, -7.75e-3f, 0f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment data = arena.allocate(2L * values.length, 2);
            float[] expected = new float[values.length];
            for (int i = 0; i < values.length; i++) {
                short bits = (short) (Float.floatToRawIntBits(values[i]) >>> 16); // truncation to bf16
                data.setAtIndex(ValueLayout.JAVA_SHORT, i, bits);
                expected[i] = Float.intBitsToFloat(bits << 16);
            }
            try (Tensor t = Tensor.fromSegment(data, DType.BF16, new long[] {values.length})) {
                assertEquals(DType.BF16, t.dtype());
                assertArrayEquals(expected, t.toFloatArray());
            }
        }
    }

    @Test
    void f32ToBf16AndBackRoundsToNearestBf16() {
        float[] values = {1f, 1.00390625f, 3.14159265f, -123.456f, 1e-3f, 65504f};
        try (Tensor f = Tensor.of(values, values.length);
             Tensor b = f.to(DType.BF16);
             Tensor back = b.to(DType.F32)) {
            assertEquals(DType.BF16, b.dtype());
            float[] r = back.toFloatArray();
            for (int i = 0; i < values.length; i++) {
                // bf16 keeps 8 significant bits (ulp 2^-7 at 1): round-to-nearest errs by at most 2^-8 relative
                assertEquals(values[i], r[i], Math.abs(values[i]) * 0x1p-8f, "element " + i);
            }
            assertEquals(1f, r[0]);
            assertEquals(1f, r[1]); // exactly half an ulp: ties to even
        }
    }

    @Test
    void wrapAndToNDArrayShareStorageButNotHandles() {
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            NDArray a = manager.create(new float[] {1, 2, 3, 4}, new Shape(2, 2));
            Tensor t = Tensor.wrap((PtNDArray) a);
            a.close(); // the tensor keeps its own handle
            assertArrayEquals(new float[] {1, 2, 3, 4}, t.toFloatArray());

            PtNDArray back = t.toNDArray(manager);
            t.close(); // the array keeps its own handle
            assertArrayEquals(new float[] {1, 2, 3, 4}, back.toFloatArray());
            assertEquals(new Shape(2, 2), back.getShape());
            NDArray sum = back.add(1f);
            assertArrayEquals(new float[] {2, 3, 4, 5}, sum.toFloatArray());
        }
    }

    @Test
    void bf16TensorsPassThroughDjlAsHandlesOnly() {
        try (NDManager manager = NDManager.newBaseManager("PyTorch");
             Tensor f = Tensor.of(new float[] {0.5f, -3f, 96f}, 3);
             Tensor b = f.to(DType.BF16)) {
            PtNDArray held = b.toNDArray(manager); // DJL only holds it; its own BF16 path would abort
            try (Tensor back = Tensor.wrap(held)) {
                assertEquals(DType.BF16, back.dtype());
                assertArrayEquals(new float[] {0.5f, -3f, 96f}, back.toFloatArray());
            }
        }
    }

    @Test
    void closeTwiceIsSafeAndCountsOnce() {
        long before = Tensor.liveHandles();
        Tensor t = Tensor.of(new float[] {1, 2}, 2);
        assertEquals(before + 1, Tensor.liveHandles());
        t.close();
        t.close();
        assertTrue(t.isClosed());
        assertEquals(before, Tensor.liveHandles());
        assertThrows(IllegalStateException.class, t::shape);
        assertThrows(IllegalStateException.class, () -> Dispatcher.call("aten::silu", "", t));
        assertEquals(before, Tensor.liveHandles());
    }

    @Test
    void copyFromConvertsIntoAnExistingTensor() {
        try (Tensor src = Tensor.of(new float[] {0.5f, 1.5f}, 2);
             Tensor dst = Tensor.empty(new long[] {2}, DType.BF16, Device.CPU)) {
            dst.copyFrom(src);
            assertArrayEquals(new float[] {0.5f, 1.5f}, dst.toFloatArray());
        }
    }

    @Test
    void fromSegmentRefusesTooSmallOrHeapMemory() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment small = arena.allocate(8);
            assertThrows(IllegalArgumentException.class,
                    () -> Tensor.fromSegment(small, DType.F32, new long[] {3}));
        }
        MemorySegment heap = MemorySegment.ofArray(new float[4]);
        assertThrows(IllegalArgumentException.class, () -> Tensor.fromSegment(heap, DType.F32, new long[] {4}));
        assertFalse(heap.isNative());
    }
}

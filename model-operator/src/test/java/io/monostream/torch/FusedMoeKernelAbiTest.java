package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.monostream.model.ModalityRuns;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The FFM binding of the fused MoE library's host-side ABI (no GPU needed): version, error
 * strings, the run table against {@link ModalityRuns} on random masks, and the argument checks
 * that return before any device work. Skipped when {@code make -C cuda} has not built the library.
 */
class FusedMoeKernelAbiTest {
    private static FusedMoeKernel kernel;

    @BeforeAll
    static void load() {
        FusedMoeKernel.Availability a = FusedMoeKernel.availability();
        assumeTrue(a.kernel().isPresent(), () -> "skipped: " + a.reason());
        kernel = a.kernel().get();
    }

    @Test
    void abiVersionMatchesTheHeader() {
        assertEquals(FusedMoeKernel.ABI_VERSION, kernel.abiVersion());
    }

    @Test
    void everyErrorCodeHasItsOwnMessage() {
        assertEquals("ok", kernel.errorString(FusedMoeKernel.OK));
        assertTrue(kernel.errorString(FusedMoeKernel.ERR_INVALID_ARGUMENT).contains("invalid argument"));
        assertTrue(kernel.errorString(FusedMoeKernel.ERR_UNSUPPORTED_SHAPE).contains("hidden % 128"));
        assertTrue(kernel.errorString(FusedMoeKernel.ERR_MISALIGNED).contains("16-byte"));
        assertTrue(kernel.errorString(FusedMoeKernel.ERR_CAPACITY).contains("capacity"));
        assertTrue(kernel.errorString(FusedMoeKernel.ERR_UNSUPPORTED_DEVICE).contains("8.0"));
        assertEquals("unknown error code", kernel.errorString(77));
        // cudaErrorMemoryAllocation = 2, from the statically linked runtime
        assertTrue(kernel.errorString(FusedMoeKernel.ERR_CUDA_BASE + 2).toLowerCase().contains("memory"),
                kernel.errorString(FusedMoeKernel.ERR_CUDA_BASE + 2));
    }

    @Test
    void runTableMatchesModalityRunsOnRandomMasks() {
        Random random = new Random(5);
        List<boolean[]> masks = new ArrayList<>();
        masks.add(new boolean[0]);
        masks.add(new boolean[] {false});
        masks.add(new boolean[] {true});
        masks.add(alternating(257));
        masks.add(block(8192, 0, 0));
        masks.add(block(8192, 0, 8192));
        masks.add(block(9 + 512 + 20, 9, 512));
        masks.add(block(127 + 128 + 129, 127, 128));
        for (int i = 0; i < 200; i++) {
            boolean[] m = new boolean[1 + random.nextInt(i < 150 ? 600 : 8192)];
            boolean v = random.nextBoolean();
            for (int t = 0; t < m.length; t++) {
                if (random.nextInt(1 + random.nextInt(300)) == 0) {
                    v = !v;
                }
                m[t] = v;
            }
            masks.add(m);
        }
        for (boolean[] mask : masks) {
            ModalityRuns expected = ModalityRuns.of(mask);
            FusedMoeKernel.RunTable table = kernel.buildRunTable(mask);
            assertEquals(mask.length, table.tokens());
            assertEquals(expected.runs().size(), table.runs().size(), "runs of " + mask.length + " tokens");
            int tiles = 0;
            for (int r = 0; r < expected.runs().size(); r++) {
                ModalityRuns.Run e = expected.runs().get(r);
                FusedMoeKernel.Run got = table.runs().get(r);
                assertEquals(new FusedMoeKernel.Run(e.start(), e.length(), e.visual() ? 1 : 0, tiles), got, "run " + r);
                tiles += (e.length() + FusedMoeKernel.TILE_M - 1) / FusedMoeKernel.TILE_M;
            }
            assertEquals(tiles, table.mTiles());
        }
    }

    @Test
    void runTableBuilderRefusesBadArguments() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocate(4);
            MemorySegment runs = arena.allocate(16 * 4, 16);
            MemorySegment count = arena.allocate(4, 4);
            MemorySegment tiles = arena.allocate(4, 4);
            mask.set(ValueLayout.JAVA_BYTE, 1, (byte) 1); // text, image, text, text: 3 runs
            assertEquals(FusedMoeKernel.OK, kernel.buildRunTable(mask, 4, runs, 4, count, tiles));
            assertEquals(3, count.get(ValueLayout.JAVA_INT, 0));
            assertEquals(FusedMoeKernel.ERR_CAPACITY, kernel.buildRunTable(mask, 4, runs, 2, count, tiles));
            assertEquals(FusedMoeKernel.ERR_CAPACITY, kernel.buildRunTable(mask, 4, MemorySegment.NULL, 4, count, tiles));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.buildRunTable(MemorySegment.NULL, 4, runs, 4, count, tiles));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.buildRunTable(mask, -1, runs, 4, count, tiles));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.buildRunTable(mask, 4, runs, 4, MemorySegment.NULL, tiles));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.buildRunTable(mask, 4, runs, 4, count, MemorySegment.NULL));
            assertEquals(FusedMoeKernel.OK, kernel.buildRunTable(MemorySegment.NULL, 0, MemorySegment.NULL, 0, count, tiles));
            assertEquals(0, count.get(ValueLayout.JAVA_INT, 0));
            assertEquals(4, kernel.maxRuns(4));
        }
    }

    /** Shape, null and alignment checks come before any CUDA call, so they answer without a GPU. */
    @Test
    void forwardChecksArgumentsBeforeTouchingTheDevice() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment aligned = MemorySegment.ofAddress(0x10000);
            MemorySegment odd = MemorySegment.ofAddress(0x10008);
            MemorySegment weights = arena.allocate(6 * ValueLayout.ADDRESS.byteSize(), 8);
            for (int i = 0; i < 6; i++) {
                weights.setAtIndex(ValueLayout.ADDRESS, i, aligned);
            }
            MemorySegment n = MemorySegment.NULL;
            // tokens == 0 is a no-op
            assertEquals(FusedMoeKernel.OK, kernel.forward(n, n, n, n, 0, 256, 128, n, 0, 0, 0, n));
            assertEquals(FusedMoeKernel.ERR_UNSUPPORTED_SHAPE, kernel.forward(aligned, aligned, aligned, weights, 4, 100, 128, aligned, 1, 1, 0, n));
            assertEquals(FusedMoeKernel.ERR_UNSUPPORTED_SHAPE, kernel.forward(aligned, aligned, aligned, weights, 4, 256, 96, aligned, 1, 1, 0, n));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.forward(aligned, aligned, aligned, weights, -1, 256, 128, aligned, 1, 1, 0, n));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.forward(aligned, aligned, aligned, weights, 4, 256, 128, aligned, 5, 1, 0, n),
                    "more runs than tokens");
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.forward(aligned, aligned, aligned, weights, 4, 256, 128, n, 1, 1, 0, n),
                    "no run table");
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.forward(n, aligned, aligned, weights, 4, 256, 128, aligned, 1, 1, 0, n));
            assertEquals(FusedMoeKernel.ERR_INVALID_ARGUMENT, kernel.forward(aligned, aligned, aligned, n, 4, 256, 128, aligned, 1, 1, 0, n));
            assertEquals(FusedMoeKernel.ERR_MISALIGNED, kernel.forward(odd, aligned, aligned, weights, 4, 256, 128, aligned, 1, 1, 0, n));
            weights.setAtIndex(ValueLayout.ADDRESS, 3, odd); // w3 of the image expert
            assertEquals(FusedMoeKernel.ERR_MISALIGNED, kernel.forward(aligned, aligned, aligned, weights, 4, 256, 128, aligned, 1, 1, 0, n));
        }
    }

    @Test
    void shapeConstraintsAreTheKernels() {
        assertEquals(null, FusedMoeKernel.shapeProblem(2048, 8192));
        assertTrue(FusedMoeKernel.shapeProblem(48, 80).contains("hidden % 128"));
        assertTrue(FusedMoeKernel.shapeProblem(128, 96) != null);
    }

    @Test
    void aNamedLibraryThatDoesNotExistIsReportedNotLoaded() {
        String before = System.getProperty(FusedMoeKernel.LIBRARY_PROPERTY);
        try {
            System.setProperty(FusedMoeKernel.LIBRARY_PROPERTY, "/no/such/libmonostream_moe.so");
            assertFalse(FusedMoeKernel.locate().isPresent());
        } finally {
            if (before == null) {
                System.clearProperty(FusedMoeKernel.LIBRARY_PROPERTY);
            } else {
                System.setProperty(FusedMoeKernel.LIBRARY_PROPERTY, before);
            }
        }
        assertThrows(IllegalArgumentException.class, () -> FusedMoeKernel.open(java.nio.file.Path.of("/no/such/lib.so")));
    }

    private static boolean[] alternating(int n) {
        boolean[] m = new boolean[n];
        for (int i = 0; i < n; i++) {
            m[i] = i % 2 == 1;
        }
        return m;
    }

    private static boolean[] block(int n, int start, int length) {
        boolean[] m = new boolean[n];
        java.util.Arrays.fill(m, start, start + length, true);
        return m;
    }
}

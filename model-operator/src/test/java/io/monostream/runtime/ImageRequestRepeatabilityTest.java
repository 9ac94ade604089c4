package io.monostream.runtime;

import io.monostream.prompt.Task;
import io.monostream.testing.TestModels;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/**
 * Pins that an image request gives the same logits before and after a garbage collection:
 * no weight may be a view of a Java direct buffer the GC can free (the position table once was).
 */
class ImageRequestRepeatabilityTest {

    @Test
    void imageLogitsSurviveGarbageCollection() throws Exception {
        GenerationRequest request = GenerationRequest.builder("gc")
                .image(Files.readAllBytes(TestModels.image("small-37x23.png")))
                .task(Task.OCR)
                .maxNewTokens(1)
                .build();
        try (Engine engine = Engine.open(EngineOptions.builder(TestModels.model("tiny-v2")).build())) {
            float[] before = engine.generateNow(request).firstLogits();
            for (int round = 0; round < 2; round++) {
                System.gc();
                Thread.sleep(100); // the Cleaner frees unreachable direct buffers on its own thread
                scribbleOverFreedNativeMemory();
                assertArrayEquals(before, engine.generateNow(request).firstLogits(), "after GC round " + round);
            }
        }
    }

    /** Reuses freed native memory with NaNs, so a dangling view reads garbage rather than stale weights. */
    private static void scribbleOverFreedNativeMemory() {
        for (int i = 0; i < 64; i++) {
            ByteBuffer b = ByteBuffer.allocateDirect(1 << 16);
            for (int at = 0; at < b.capacity(); at += 4) {
                b.putFloat(at, Float.NaN);
            }
        }
    }
}

package io.monostream.runtime;

import io.monostream.prompt.Task;
import io.monostream.testing.TestModels;
import org.junit.jupiter.api.Test;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pins that the engine keeps no native memory in Java direct buffers: their memory is freed only
 * when the garbage collector finds them, so a TaskManager with a large, quiet heap would grow by
 * every image's pixels (12 MB for 5 tiles) until a GC or {@code MaxDirectMemorySize} (DJL's
 * {@code NDManager.create} copies into one; the engine goes through the bridge instead).
 */
class DirectMemoryTest {

    @Test
    void loadingAndImageRequestsLeaveNoDirectBufferMemory() throws Exception {
        System.gc();
        GenerationRequest request = GenerationRequest.builder("direct")
                .image(Files.readAllBytes(TestModels.image("small-37x23.png")))
                .task(Task.CAPTION)
                .maxNewTokens(2)
                .build();
        long before = directBytes();
        try (Engine engine = Engine.open(EngineOptions.builder(TestModels.model("tiny-v2")).build())) {
            long loaded = directBytes();
            engine.generateNow(request); // the model and preprocessing threads' first call sets up their small native scratch
            long warm = directBytes();
            for (int i = 0; i < 5; i++) {
                engine.generateNow(request);
            }
            long after = directBytes();
            // a GC can only lower these figures, so a run that frees old buffers cannot fail; the
            // slack of 4 KB is a thread's native scratch, against the 128 KB position table and the
            // 2.4 MB of pixels per tile of this model that would show if they went through DJL
            assertTrue(loaded - before < 4096, "loading left " + (loaded - before) + " bytes in direct buffers");
            assertTrue(warm - loaded < 4096, "the first request left " + (warm - loaded) + " bytes in direct buffers");
            assertTrue(after <= warm, "5 image requests left " + (after - warm) + " bytes in direct buffers");
        }
    }

    private static long directBytes() {
        return ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct"))
                .mapToLong(BufferPoolMXBean::getMemoryUsed)
                .sum();
    }
}

package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** Pins that the thread count is set for, and seen by, the calling thread. */
class TorchThreadsTest {

    @Test
    void eachThreadSeesTheCountItConfigured() throws InterruptedException {
        TorchThreads.configure(2);
        assertEquals(2, TorchThreads.current());
        AtomicInteger seen = new AtomicInteger();
        Thread worker = new Thread(() -> {
            TorchThreads.configure(1);
            seen.set(TorchThreads.current());
        });
        worker.start();
        worker.join();
        assertEquals(1, seen.get());
        TorchThreads.configure(2);
        assertEquals(2, TorchThreads.current());
    }

    @Test
    void refusesNonPositiveCounts() {
        assertThrows(IllegalArgumentException.class, () -> TorchThreads.configure(0));
    }
}

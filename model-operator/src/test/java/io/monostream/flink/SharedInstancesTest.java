package io.monostream.flink;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** Pins the engine lifecycle: one instance per key, shared, closed with the last lease only. */
class SharedInstancesTest {
    static final class Resource implements AutoCloseable {
        final AtomicInteger closed = new AtomicInteger();

        @Override
        public void close() {
            closed.incrementAndGet();
        }
    }

    @Test
    void oneInstancePerKeyClosedWithTheLastLease() throws Exception {
        SharedInstances<Resource> shared = new SharedInstances<>();
        AtomicInteger created = new AtomicInteger();
        var a = shared.acquire("m|f32|cpu", () -> { created.incrementAndGet(); return new Resource(); });
        var b = shared.acquire("m|f32|cpu", () -> { created.incrementAndGet(); return new Resource(); });
        var other = shared.acquire("m|bf16|cpu", () -> { created.incrementAndGet(); return new Resource(); });
        assertEquals(2, created.get());
        assertSame(a.get(), b.get());
        assertEquals(2, shared.users("m|f32|cpu"));
        a.close();
        a.close(); // twice is harmless
        assertEquals(0, b.get().closed.get());
        b.close();
        assertEquals(1, b.get().closed.get());
        assertEquals(0, shared.users("m|f32|cpu"));
        var c = shared.acquire("m|f32|cpu", Resource::new);
        assertNotSame(b.get(), c.get(), "a new user after the last close opens a fresh instance");
        c.close();
        other.close();
    }
}

package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Pins that thousands of dispatcher calls neither leak handles nor grow native memory. */
class OwnershipTest {

    private static final int CALLS = 5000;

    /** Resident set size of this process in KiB, from /proc/self/status. */
    static long residentKiB() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        throw new IllegalStateException("no VmRSS in /proc/self/status");
    }

    /** {@link #nativeResidentKiB()} once collection and the memory it returns have settled. */
    static long settledNativeResidentKiB() {
        long last = Long.MIN_VALUE;
        for (int i = 0; i < 10; i++) {
            System.gc();
            try {
                Thread.sleep(200); // G1 and malloc give memory back shortly after a collection
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            long now = nativeResidentKiB();
            if (Math.abs(now - last) < 256) {
                return now;
            }
            last = now;
        }
        return last;
    }

    /** RSS minus the committed Java heap: what native memory (libtorch's tensors) holds, in KiB. */
    static long nativeResidentKiB() {
        long heap = java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getCommitted();
        return residentKiB() - heap / 1024;
    }

    /** One round of calls covering every ownership path: plain, optional, in-place, multi-output, typed. */
    private static void round(Tensor q, Tensor x, Tensor w, Tensor b, Tensor idx, Tensor dst) {
        try (Tensor y = Dispatcher.call("aten::linear", "", x, w, Optional.of(b));
             Tensor s = Dispatcher.call("aten::silu", "", y);
             Tensor a = Dispatcher.call("aten::add", "Tensor", s, y);
             Tensor m = Dispatcher.call("aten::mul", "Tensor", a, a);
             Tensor r = Dispatcher.call("aten::index_select", "", m, 0L, idx);
             Tensor same = Dispatcher.call("aten::index_copy_", "", dst, 0L, idx, r);
             Tensor att = Dispatcher.call("aten::scaled_dot_product_attention", "",
                     q, q, q, null, 0.0, true, Optional.of(0.25), false);
             Tensor h = att.to(DType.BF16)) {
            for (Tensor t : Dispatcher.callMulti("aten::max", "dim", 2, h, 1L, false)) {
                t.close();
            }
        }
    }

    @Test
    void fiveThousandCallsReturnEveryHandleAndKeepMemoryFlat() {
        try (Tensor q = Tensor.of(new float[2 * 16 * 64], 1, 2, 16, 64);
             Tensor x = Tensor.of(new float[32 * 64], 32, 64);
             Tensor w = Tensor.of(new float[48 * 64], 48, 64);
             Tensor b = Tensor.of(new float[48], 48);
             Tensor idx = Tensor.ofLongs(new long[] {3, 1, 4}, 3);
             Tensor dst = Tensor.of(new float[32 * 48], 32, 48)) {
            // warm-up with as many calls as measured: JIT, libtorch's and malloc's caches, and the
            // Java heap reach their steady size, so heap shrinking later cannot hide a native leak
            for (int i = 0; i < CALLS / 10; i++) {
                round(q, x, w, b, idx, dst);
            }
            long handlesBefore = Tensor.liveHandles();
            long rssBefore = settledNativeResidentKiB();
            int calls = 0;
            while (calls < CALLS) {
                round(q, x, w, b, idx, dst);
                calls += 10; // dispatcher calls per round, counting to() and callMulti
            }
            long rssAfter = settledNativeResidentKiB();
            assertEquals(handlesBefore, Tensor.liveHandles(), "live handles after " + CALLS + " calls");
            long growthKiB = rssAfter - rssBefore;
            System.out.printf("RSS minus Java heap %d KiB -> %d KiB (%+d KiB) over %d dispatcher calls%n",
                    rssBefore, rssAfter, growthKiB, CALLS);
            // one leaked 6 KiB output per call would be 30 MB; 4 MB leaves room for JIT and GC noise
            assertTrue(growthKiB < 4096, "RSS grew by " + growthKiB + " KiB");
        }
    }

    @Test
    void concurrentCallersGetTheirOwnResultsAndLeakNothing() throws Exception {
        long before = Tensor.liveHandles();
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(4);
        try {
            java.util.List<java.util.concurrent.Future<Boolean>> results = new java.util.ArrayList<>();
            for (int task = 0; task < 4; task++) {
                float value = task + 1;
                results.add(pool.submit(() -> {
                    TorchThreads.configure(1);
                    try (Tensor x = Tensor.of(new float[] {value, value}, 1, 2);
                         Tensor w = Tensor.of(new float[] {1, 1, 1, -1}, 2, 2)) {
                        for (int i = 0; i < 500; i++) {
                            try (Tensor y = Dispatcher.call("aten::linear", "", x, w, null)) {
                                float[] r = y.toFloatArray();
                                if (r[0] != 2 * value || r[1] != 0) {
                                    return false;
                                }
                            }
                        }
                    }
                    return true;
                }));
            }
            for (java.util.concurrent.Future<Boolean> r : results) {
                assertTrue(r.get());
            }
        } finally {
            pool.shutdown();
        }
        assertEquals(before, Tensor.liveHandles());
    }
}

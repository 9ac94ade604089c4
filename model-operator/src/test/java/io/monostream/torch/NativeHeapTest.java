package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Optional;
import org.junit.jupiter.api.Test;

/** {@link NativeHeap#trim} binds glibc's malloc_trim (the build and CI run on glibc) and may run at any time. */
class NativeHeapTest {
    @Test
    void trimRunsAfterTensorsAreFreed() {
        assumeTrue("Linux".equals(System.getProperty("os.name")), "glibc's malloc_trim");
        Tensor[] many = new Tensor[200];
        for (int i = 0; i < many.length; i++) {
            many[i] = Tensor.empty(new long[] {64 * 1024}, DType.F32, Device.CPU);
            Dispatcher.callInPlace("aten::normal_", "", many[i], 0.0, 1.0, Optional.empty());
        }
        for (Tensor t : many) {
            t.close();
        }
        assertTrue(NativeHeap.trim(), "glibc has malloc_trim");
        assertTrue(NativeHeap.trim(), "and it may run again at once");
    }
}

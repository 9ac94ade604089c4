package io.monostream.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.monostream.torch.Device;
import org.junit.jupiter.api.Test;

/** The fused kernel is chosen only on CUDA, in BF16, for shapes it supports; every other case says why it is partitioned. */
class MoeImplementationTest {

    @Test
    void partitionedOffCudaInF32AndForUnsupportedShapes() {
        assertPartitioned(MoeImplementation.choose(Device.CPU, Precision.BF16, 2048, 8192), "cpu");
        assertPartitioned(MoeImplementation.choose(Device.cuda(0), Precision.F32, 2048, 8192), "BF16 only");
        assertPartitioned(MoeImplementation.choose(Device.cuda(0), Precision.BF16, 48, 80), "hidden % 128");
        assertPartitioned(MoeImplementation.choose(Device.cuda(0), Precision.BF16, 2048, 8200), "intermediate % 64");
    }

    private static void assertPartitioned(MoeImplementation m, String why) {
        assertEquals(MoeImplementation.PARTITIONED, m.name());
        assertTrue(m.reason().contains(why), m.reason());
    }
}

package io.monostream.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import io.monostream.model.MoeImplementation;
import io.monostream.testing.TestModels;
import io.monostream.torch.TorchBridge;
import org.junit.jupiter.api.Test;

/** Where CUDA is absent, {@code --device cuda} fails at engine open with one line saying what to install; the CPU MoE is partitioned. */
class CudaDeviceTest {

    @Test
    void cudaWithoutTheCudaFlavourFailsAtOpenWithWhatToInstall() {
        assumeFalse(TorchBridge.get().hasCuda(), "this machine has CUDA");
        for (String device : new String[] {"cuda", "cuda:1"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Engine.open(
                    EngineOptions.builder(TestModels.model("tiny-v2")).dtype("bf16").device(device).build()));
            String m = e.getMessage();
            assertEquals(-1, m.indexOf('\n'), m);
            assertTrue(m.startsWith("device cuda:"), m);
            assertTrue(m.contains("PYTORCH_LIBRARY_PATH") && m.contains("PYTORCH_FLAVOR"), m);
        }
    }

    @Test
    void unknownDeviceIsRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Engine.open(
                EngineOptions.builder(TestModels.model("tiny-v2")).device("tpu").build()));
        assertTrue(e.getMessage().contains("cpu, cuda or cuda:N"), e.getMessage());
    }

    @Test
    void theMoeOnTheCpuIsPartitioned() {
        try (Engine engine = Engine.open(EngineOptions.builder(TestModels.model("tiny-v2")).dtype("bf16").threads(1).build())) {
            MoeImplementation moe = engine.generator().model().moeImplementation();
            assertEquals(MoeImplementation.PARTITIONED, moe.name());
            assertTrue(moe.reason().contains("cpu"), moe.reason());
        }
    }
}

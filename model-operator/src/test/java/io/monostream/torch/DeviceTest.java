package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Pins device parsing and the clear refusal of CUDA on this CPU-only libtorch. */
class DeviceTest {

    @Test
    void parsesCpuAndCudaSpellings() {
        assertEquals(Device.CPU, Device.parse("cpu"));
        assertEquals(Device.CPU, Device.parse(" CPU "));
        assertEquals(Device.cuda(0), Device.parseSyntax("cuda"));
        assertEquals(Device.cuda(3), Device.parseSyntax("cuda:3"));
        assertEquals("cuda:3", Device.cuda(3).toString());
    }

    @Test
    void rejectsMalformedSpecs() {
        for (String bad : new String[] {"gpu", "cuda:", "cuda:x", "cuda:-1", "", "cpu:0"}) {
            assertThrows(IllegalArgumentException.class, () -> Device.parse(bad), bad);
        }
    }

    @Test
    void cudaOnACpuOnlyLibtorchFailsWithAClearMessage() {
        // DJL's pytorch-native-cpu is the flavour on this machine's classpath
        assertFalse(TorchBridge.get().hasCuda());
        TorchException e = assertThrows(TorchException.class, () -> Device.parse("cuda:0"));
        assertTrue(e.getMessage().contains("CPU-only"), e.getMessage());
        assertTrue(TorchBridge.get().currentCudaStream(Device.cuda(0)).isEmpty());
        assertTrue(TorchBridge.get().currentCudaStream(Device.CPU).isEmpty());
        try (Tensor t = Tensor.of(new float[] {1}, 1)) {
            assertTrue(t.cudaStream().isEmpty());
        }
    }

    @Test
    void allocatingOnCudaFailsWithATorchException() {
        TorchException e = assertThrows(TorchException.class,
                () -> Tensor.empty(new long[] {2}, DType.F32, Device.cuda(0)));
        assertTrue(e.getMessage().contains("CPU-only"), e.getMessage());
    }

    @Test
    void dtypeCodesComeFromLibtorchAndRoundTrip() {
        for (DType t : DType.values()) {
            assertEquals(t, DType.fromCode(t.code()));
        }
        assertEquals(DType.BF16, DType.parse("bf16"));
        assertEquals(DType.F32, DType.parse("float32"));
        assertThrows(IllegalArgumentException.class, () -> DType.parse("fp8"));
    }
}

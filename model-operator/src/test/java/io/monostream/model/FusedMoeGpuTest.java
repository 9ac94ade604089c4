package io.monostream.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.torch.Aten;
import io.monostream.torch.DType;
import io.monostream.torch.Device;
import io.monostream.torch.FusedMoeKernel;
import io.monostream.torch.TorchBridge;
import java.util.Arrays;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * On a GPU: the fused kernel's MoE equals the partitioned MoE (libtorch's GEMMs) within BF16
 * tolerance for all-text, all-image, alternating, prompt-shaped and single-token masks.
 * Skipped where CUDA (DJL's CUDA flavour and a GPU) or the library is absent.
 */
@Tag("gpu")
class FusedMoeGpuTest {
    private static final int H = 256;
    private static final int I = 512;

    @Test
    void fusedKernelMatchesPartitionedWithinBf16Tolerance() {
        assumeTrue(TorchBridge.get().hasCuda(), "no CUDA: DJL's CPU libtorch or no GPU");
        FusedMoeKernel.Availability library = FusedMoeKernel.availability();
        assumeTrue(library.kernel().isPresent(), library::reason);
        Device device = Device.cuda(0);
        try (NDManager m = NDManager.newBaseManager(device.toDjl())) {
            m.getEngine().setRandomSeed(11);
            MultimodalMoe moe = new MultimodalMoe(expert(m), expert(m));
            MoeImplementation fused = MoeImplementation.choose(device, Precision.BF16, H, I);
            assertEquals(MoeImplementation.FUSED, fused.name(), fused.reason());
            moe.use(fused, m);
            try (fused) {
                for (boolean[] mask : masks()) {
                    ModalityRuns runs = ModalityRuns.of(mask);
                    NDArray x = Aten.cast(m.randomNormal(new Shape(mask.length, H)), DType.BF16);
                    float[] kernel = Precision.widen(moe.forward(x, runs)).toFloatArray();
                    float[] reference = Precision.widen(moe.forwardPartitioned(x, runs)).toFloatArray();
                    assertClose(reference, kernel, mask.length + " tokens");
                }
            }
        }
    }

    /** Both sides round to BF16 (8 bits of mantissa) at different points: 2^-7 relative plus a small absolute floor. */
    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        float scale = 0;
        for (float v : expected) {
            scale = Math.max(scale, Math.abs(v));
        }
        for (int i = 0; i < expected.length; i++) {
            float tol = 0.0078125f * Math.abs(expected[i]) + 0.01f * scale;
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol,
                    what + ", element " + i + ": " + expected[i] + " vs " + actual[i]);
        }
    }

    private static FeedForward expert(NDManager m) {
        float scale = (float) (1 / Math.sqrt(H));
        return new FeedForward(bf16(m, I, H, scale), bf16(m, H, I, scale), bf16(m, I, H, scale));
    }

    private static NDArray bf16(NDManager m, int rows, int cols, float scale) {
        return Aten.cast(m.randomNormal(new Shape(rows, cols)).mul(scale), DType.BF16);
    }

    private static boolean[][] masks() {
        boolean[] allText = new boolean[300];
        boolean[] allImage = new boolean[300];
        Arrays.fill(allImage, true);
        boolean[] alternating = new boolean[129];
        for (int i = 0; i < alternating.length; i++) {
            alternating[i] = i % 2 == 1;
        }
        boolean[] prompt = new boolean[20 + 256 + 9];
        Arrays.fill(prompt, 20, 276, true);
        return new boolean[][] {allText, allImage, alternating, prompt, {false}, {true}};
    }
}

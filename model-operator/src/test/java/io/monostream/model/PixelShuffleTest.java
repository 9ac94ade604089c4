package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

/** Spec §10 invariant 4: the v1 and v2 pixel-shuffle token order and channel packing on a 4×4 probe. */
class PixelShuffleTest {
    /** P[y][x] = 10y + x in every one of 2 channels (channel c adds 100c). */
    private static NDArray probe(NDManager m) {
        float[] v = new float[4 * 4 * 2];
        for (int y = 0; y < 4; y++) {
            for (int x = 0; x < 4; x++) {
                for (int c = 0; c < 2; c++) {
                    v[(y * 4 + x) * 2 + c] = 10 * y + x + 100 * c;
                }
            }
        }
        return m.create(v, new Shape(1, 4, 4, 2));
    }

    private static float[] cell(int y, int x) {
        return new float[] {10 * y + x, 10 * y + x + 100};
    }

    private static float[] concat(float[]... parts) {
        float[] out = new float[parts.length * 2];
        for (int i = 0; i < parts.length; i++) {
            System.arraycopy(parts[i], 0, out, 2 * i, 2);
        }
        return out;
    }

    @Test
    void v2TokenOneIsTheSecondBlockOfTheFirstRow() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray out = PixelShuffle.apply(probe(m), 2, PixelShuffle.Version.V2);
            assertArrayEquals(new long[] {1, 4, 8}, out.getShape().getShape());
            assertArrayEquals(concat(cell(0, 2), cell(0, 3), cell(1, 2), cell(1, 3)), out.get("0, 1").toFloatArray());
            assertArrayEquals(concat(cell(2, 0), cell(2, 1), cell(3, 0), cell(3, 1)), out.get("0, 2").toFloatArray());
        }
    }

    @Test
    void v1TokenOneIsTheFirstBlockOfTheSecondRow() {
        try (NDManager m = NDManager.newBaseManager()) {
            NDArray out = PixelShuffle.apply(probe(m), 2, PixelShuffle.Version.V1);
            assertArrayEquals(concat(cell(2, 0), cell(2, 1), cell(3, 0), cell(3, 1)), out.get("0, 1").toFloatArray());
            assertArrayEquals(concat(cell(0, 2), cell(0, 3), cell(1, 2), cell(1, 3)), out.get("0, 2").toFloatArray());
        }
    }
}

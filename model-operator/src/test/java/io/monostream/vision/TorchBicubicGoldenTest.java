package io.monostream.vision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Pins TorchBicubic to torch F.interpolate(bicubic, align_corners=False) goldens and spec invariant 5. */
class TorchBicubicGoldenTest {

    @Test
    void matchesTorchInterpolate() {
        JsonNode m = Golden.manifest();
        for (JsonNode c : m.get("torch")) {
            float[] in = Golden.floats(c.get("input").asText());
            float[] expected = Golden.floats(c.get("output").asText());
            float[] actual = TorchBicubic.resize(in, c.get("channels").asInt(), c.get("inH").asInt(), c.get("inW").asInt(),
                    c.get("outH").asInt(), c.get("outW").asInt());
            assertEquals(expected.length, actual.length);
            double max = 0;
            int exact = 0;
            for (int i = 0; i < actual.length; i++) {
                max = Math.max(max, Math.abs(actual[i] - expected[i]));
                exact += Float.floatToIntBits(actual[i]) == Float.floatToIntBits(expected[i]) ? 1 : 0;
            }
            System.out.printf("torch bicubic %dx%d -> %dx%d: max abs diff %.3g, %d of %d bit-exact%n", c.get("inH").asInt(),
                    c.get("inW").asInt(), c.get("outH").asInt(), c.get("outW").asInt(), max, exact, actual.length);
            assertTrue(max <= 1e-5, "max abs diff " + max);
        }
    }

    @Test
    void invariant5IdentityResizeIsBitIdentical() {
        float[] pos = new float[7 * 32 * 32];
        Random r = new Random(5);
        for (int i = 0; i < pos.length; i++) {
            pos[i] = (float) r.nextGaussian() * 3f;
        }
        assertArrayEquals(pos, TorchBicubic.resize(pos, 7, 32, 32, 32, 32));
    }
}

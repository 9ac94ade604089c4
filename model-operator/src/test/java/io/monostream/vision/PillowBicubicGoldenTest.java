package io.monostream.vision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Pins PillowBicubic to Pillow's own BICUBIC output (goldens from python3-pil), pixel by pixel. */
class PillowBicubicGoldenTest {

    @Test
    void everyPixelMatchesPillowWithinOne() {
        JsonNode m = Golden.manifest();
        int worst = 0;
        int cases = 0;
        for (JsonNode r : m.get("resize")) {
            RgbImage src = Golden.png(m.get("sources").get(r.get("source").asText()).asText());
            RgbImage expected = Golden.png(r.get("expected").asText());
            RgbImage actual = PillowBicubic.resize(src, r.get("width").asInt(), r.get("height").asInt());
            int[] differing = new int[1];
            int max = Golden.maxDiff(actual, expected, differing);
            System.out.printf("resize %s -> %dx%d: max diff %d, %d of %d samples not exact%n", r.get("source").asText(),
                    actual.width(), actual.height(), max, differing[0], actual.rgb().length);
            assertTrue(max <= 1, "max diff " + max + " for " + r.get("expected").asText());
            worst = Math.max(worst, max);
            cases++;
        }
        assertTrue(cases >= 10, "too few resize goldens: " + cases);
        System.out.println("Pillow bicubic: worst diff " + worst + " over " + cases + " resizes (Pillow " + m.get("pillow").asText() + ")");
    }

    @Test
    void photoSizedResizeIsFast() {
        byte[] px = new byte[4000 * 3000 * 3];
        new Random(3).nextBytes(px);
        RgbImage src = new RgbImage(4000, 3000, px);
        PillowBicubic.resize(src, 1792, 1344); // warm-up
        long best = Long.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            PillowBicubic.resize(src, 1792, 1344);
            best = Math.min(best, System.nanoTime() - t0);
        }
        System.out.printf("4000x3000 -> 1792x1344: %.0f ms%n", best / 1e6);
        assertTrue(best < 3_000_000_000L, "resize took " + best / 1_000_000 + " ms");
    }

    @Test
    void sameSizeIsACopy() {
        byte[] px = new byte[5 * 4 * 3];
        new Random(1).nextBytes(px);
        RgbImage src = new RgbImage(5, 4, px);
        RgbImage out = PillowBicubic.resize(src, 5, 4);
        assertArrayEquals(px, out.rgb());
        assertTrue(out.rgb() != px, "must not share the source buffer");
    }

    @Test
    void constantImageStaysConstant() {
        byte[] px = new byte[31 * 17 * 3];
        java.util.Arrays.fill(px, (byte) 200);
        RgbImage out = PillowBicubic.resize(new RgbImage(31, 17, px), 448, 448);
        for (byte b : out.rgb()) {
            assertTrue((b & 0xFF) == 200, "normalised weights keep a flat image flat");
        }
    }
}

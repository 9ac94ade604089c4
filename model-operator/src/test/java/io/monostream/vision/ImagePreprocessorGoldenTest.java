package io.monostream.vision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

/** Pins whole-image preprocessing (grid, tile order, thumbnail, normalisation) to the Pillow/torch reference. */
class ImagePreprocessorGoldenTest {

    @Test
    void tilesMatchReferencePreprocessing() {
        JsonNode m = Golden.manifest();
        for (JsonNode c : m.get("preprocess")) {
            TilingOptions opts = new TilingOptions(c.get("tileSize").asInt(), c.get("minTiles").asInt(),
                    c.get("maxTiles").asInt(), c.get("useThumbnail").asBoolean(), true);
            byte[] encoded = Golden.bytes(m.get("sources").get(c.get("source").asText()).asText());
            PreprocessedImage p = new ImagePreprocessor(opts, ImageLimits.defaults()).preprocess(encoded);
            String name = c.get("case").asText();
            assertEquals(new TileGrid(c.get("columns").asInt(), c.get("rows").asInt()), p.grid(), name);
            assertEquals(c.get("tiles").size(), p.tileCount(), name);
            int worst = 0;
            int differing = 0;
            for (int k = 0; k < p.tileCount(); k++) {
                int[] count = new int[1];
                worst = Math.max(worst, Golden.maxDiff(p.tiles().get(k), Golden.png(c.get("tiles").get(k).asText()), count));
                differing += count[0];
            }
            System.out.printf("preprocess %s: grid %s, %d tiles, max diff %d, %d samples not exact%n",
                    name, p.grid(), p.tileCount(), worst, differing);
            assertTrue(worst <= 1, name + ": max diff " + worst);
        }
    }

    @Test
    void normalisationMatchesTorchvisionFloat32() {
        JsonNode n = Golden.manifest().get("normalise");
        RgbImage tile = Golden.png(n.get("tile").asText());
        float[] expected = Golden.floats(n.get("values").asText());
        float[] actual = new float[3 * tile.width() * tile.height()];
        ImagePreprocessor.normalise(tile, actual, 0);
        assertEquals(expected.length, actual.length);
        double max = 0;
        for (int i = 0; i < actual.length; i++) {
            max = Math.max(max, Math.abs(actual[i] - expected[i]));
        }
        System.out.println("normalisation max abs diff " + max);
        assertTrue(max <= 1e-6, "max abs diff " + max);
    }

    @Test
    void pixelValuesAreTheNormalisedTilesInChwOrder() {
        byte[] px = new byte[10 * 6 * 3];
        for (int i = 0; i < px.length; i++) {
            px[i] = (byte) (i * 37);
        }
        TilingOptions opts = new TilingOptions(4, 1, 6, true, true);
        PreprocessedImage p = new ImagePreprocessor(opts, ImageLimits.defaults()).preprocess(new RgbImage(10, 6, px));
        assertEquals(p.tileCount() * 3 * 16, p.pixelValues().length);
        RgbImage last = p.tiles().get(p.tileCount() - 1);
        int t = p.tileCount() - 1;
        // channel 2 (blue) of pixel (x=3, y=1) of the last tile
        float v = p.pixelValues()[((t * 3 + 2) * 4 + 1) * 4 + 3];
        float expected = ((last.sample(3, 1, 2)) / 255f - 0.406f) / 0.225f;
        assertEquals(expected, v);
    }

    @Test
    void dumpedTilePngRoundTrips(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        RgbImage tile = Golden.png("preprocess/noise-37x23-s64/tile-0.png");
        java.nio.file.Path f = dir.resolve("tile-0.png");
        ImagePreprocessor.writePng(tile, f);
        org.junit.jupiter.api.Assertions.assertArrayEquals(tile.rgb(),
                new ImageDecoder(ImageLimits.defaults()).decode(java.nio.file.Files.readAllBytes(f)).rgb());
    }

    @Test
    void notDynamicMeansOneTileOfTheWholeImage() {
        byte[] px = new byte[900 * 300 * 3];
        PreprocessedImage p = new ImagePreprocessor(new TilingOptions(448, 1, 12, true, false), ImageLimits.defaults())
                .preprocess(new RgbImage(900, 300, px));
        assertEquals(new TileGrid(1, 1), p.grid());
        assertEquals(1, p.tileCount());
        assertEquals(448, p.tiles().get(0).width());
    }
}

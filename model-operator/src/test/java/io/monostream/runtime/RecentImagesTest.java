package io.monostream.runtime;

import io.monostream.prompt.Task;
import io.monostream.vision.PreprocessedImage;
import io.monostream.vision.RgbImage;
import io.monostream.vision.TileGrid;
import org.junit.jupiter.api.Test;

import java.util.Collections;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

class RecentImagesTest {
    private static final int TILE = 8; // 8x8 tiles: 768 bytes of pixel values and 192 of RGB each

    @Test
    void theLeastRecentlyUsedLeavesBeyondTheEntryBound() {
        RecentImages recent = new RecentImages(2, Long.MAX_VALUE);
        GenerationRequest a = request(1), b = request(2), c = request(3);
        recent.put(a, prepared(a, 1));
        recent.put(b, prepared(b, 1));
        assertNotNull(recent.get(a)); // a is now more recent than b
        recent.put(c, prepared(c, 1));
        assertEquals(2, recent.size());
        assertNotNull(recent.get(a));
        assertNull(recent.get(b));
        assertNotNull(recent.get(c));
    }

    @Test
    void entriesLeaveUntilTheirTilesFitTheByteBound() {
        long oneTile = 4L * 3 * TILE * TILE + 3L * TILE * TILE;
        RecentImages recent = new RecentImages(8, 5 * oneTile);
        GenerationRequest a = request(1), b = request(2), c = request(3);
        recent.put(a, prepared(a, 2));
        recent.put(b, prepared(b, 2));
        assertEquals(4 * oneTile, recent.bytes());
        recent.put(c, prepared(c, 3)); // 7 tiles: a leaves, b and c fit
        assertNull(recent.get(a));
        assertNotNull(recent.get(b));
        assertEquals(5 * oneTile, recent.bytes());
        GenerationRequest big = request(4);
        Generator.Prepared huge = prepared(big, 9);
        recent.put(big, huge); // larger than the bound alone: kept, everything else goes
        assertEquals(1, recent.size());
        assertSame(huge, recent.get(big));
        assertEquals(9 * oneTile, recent.bytes());
    }

    @Test
    void theSameBytesWithAnotherTileLimitAreAnotherEntry() {
        RecentImages recent = new RecentImages(8, Long.MAX_VALUE);
        GenerationRequest a = request(1);
        GenerationRequest sameBytesFewerTiles = GenerationRequest.builder("x").image(a.image().clone()).maxTiles(1).task(Task.CAPTION).build();
        recent.put(a, prepared(a, 1));
        assertNotNull(recent.get(GenerationRequest.builder("y").image(a.image().clone()).maxTiles(a.maxTiles()).task(Task.OCR).build()));
        assertNull(recent.get(sameBytesFewerTiles));
    }

    private static GenerationRequest request(int seed) {
        return GenerationRequest.builder("r" + seed).image(new byte[] {(byte) seed, 1, 2, 3}).maxTiles(4).task(Task.CAPTION).build();
    }

    private static Generator.Prepared prepared(GenerationRequest r, int tiles) {
        RgbImage tile = new RgbImage(TILE, TILE, new byte[3 * TILE * TILE]);
        PreprocessedImage image = new PreprocessedImage(new TileGrid(1, 1), Collections.nCopies(tiles, tile),
                new float[tiles * 3 * TILE * TILE], TILE);
        return new Generator.Prepared(r, new int[] {1}, image, 0);
    }
}

package io.monostream.vision;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/** Pins the grid choice and tile counts of spec §10 invariants 1 and 2. */
class DynamicTilerTest {

    @ParameterizedTest(name = "max 12: {0}x{1} -> ({2},{3}), n={4}")
    @CsvSource({
            "448, 448, 1, 1, 1",
            "500, 500, 1, 1, 1",
            "700, 700, 2, 2, 5",
            "1000, 1000, 3, 3, 10",
            "800, 600, 4, 3, 13",
            "1920, 1080, 4, 2, 9",
            "1080, 1920, 2, 4, 9",
            "300, 1200, 1, 4, 5",
            "4000, 100, 12, 1, 13",
    })
    void invariant1GridAndTileCountWithMax12(int w, int h, int cols, int rows, int n) {
        TileGrid g = DynamicTiler.chooseGrid(w, h, 1, 12, 448);
        assertEquals(new TileGrid(cols, rows), g);
        assertEquals(n, DynamicTiler.tileCount(g, true));
    }

    @ParameterizedTest(name = "max 6: {0}x{1} -> ({2},{3}), n={4}")
    @CsvSource({
            "800, 600, 3, 2, 7",
            "1920, 1080, 2, 1, 3",
    })
    void invariant2GridAndTileCountWithMax6(int w, int h, int cols, int rows, int n) {
        TileGrid g = DynamicTiler.chooseGrid(w, h, 1, 6, 448);
        assertEquals(new TileGrid(cols, rows), g);
        assertEquals(n, DynamicTiler.tileCount(g, true));
    }

    @Test
    void tieGoesToTheLargerGridOnlyWhenTheImageHasThePixels() {
        // 1920x1080 ties (2,1) and (4,2) exactly; a small image of the same shape keeps (2,1)
        assertEquals(new TileGrid(4, 2), DynamicTiler.chooseGrid(1920, 1080, 1, 12, 448));
        assertEquals(new TileGrid(2, 1), DynamicTiler.chooseGrid(192, 108, 1, 12, 448));
    }

    @Test
    void noThumbnailForOneTileOrWhenOff() {
        assertEquals(1, DynamicTiler.tileCount(new TileGrid(1, 1), true));
        assertEquals(12, DynamicTiler.tileCount(new TileGrid(4, 3), false));
    }

    @Test
    void minTilesExcludesSmallGrids() {
        assertEquals(new TileGrid(2, 2), DynamicTiler.chooseGrid(448, 448, 2, 12, 448));
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> DynamicTiler.chooseGrid(0, 10, 1, 12, 448));
        assertThrows(IllegalArgumentException.class, () -> DynamicTiler.chooseGrid(10, 10, 3, 2, 448));
    }
}

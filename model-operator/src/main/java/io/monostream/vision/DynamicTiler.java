package io.monostream.vision;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Chooses the tile grid for an image the way InternVL's {@code dynamic_preprocess} does
 * (spec §3.2–3.3), tie-break included.
 *
 * <pre>{@code
 * TileGrid g = DynamicTiler.chooseGrid(1920, 1080, 1, 12, 448); // (4,2)
 * int n = DynamicTiler.tileCount(g, true);                       // 9
 * }</pre>
 */
public final class DynamicTiler {
    private DynamicTiler() {
    }

    /** The grid for a {@code width x height} image; columns multiply the width. */
    public static TileGrid chooseGrid(int width, int height, int minTiles, int maxTiles, int tileSize) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size must be positive: " + width + "x" + height);
        }
        if (minTiles < 1 || maxTiles < minTiles) {
            throw new IllegalArgumentException("need 1 <= minTiles <= maxTiles, got " + minTiles + ".." + maxTiles);
        }
        double aspect = (double) width / height;
        double area = (double) width * height;
        double bestDiff = Double.POSITIVE_INFINITY;
        TileGrid best = new TileGrid(1, 1);
        for (TileGrid g : candidates(minTiles, maxTiles)) {
            double diff = Math.abs(aspect - (double) g.columns() / g.rows());
            if (diff < bestDiff) {
                bestDiff = diff;
                best = g;
            } else if (diff == bestDiff && area > 0.5 * tileSize * tileSize * g.columns() * g.rows()) {
                // spec §3.3: an exact tie goes to the larger grid only when the image has the pixels for it
                best = g;
            }
        }
        return best;
    }

    /** Tiles fed to the model: the grid, plus one thumbnail when asked for and the grid has more than one tile. */
    public static int tileCount(TileGrid grid, boolean useThumbnail) {
        return grid.count() + (useThumbnail && grid.count() > 1 ? 1 : 0);
    }

    // spec §3.2: ascending by i*j; within one product the order did not matter in a sweep, we use (i, j).
    static List<TileGrid> candidates(int minTiles, int maxTiles) {
        List<TileGrid> out = new ArrayList<>();
        for (int i = 1; i <= maxTiles; i++) {
            for (int j = 1; i * j <= maxTiles; j++) {
                if (i * j >= minTiles) {
                    out.add(new TileGrid(i, j));
                }
            }
        }
        out.sort(Comparator.comparingInt(TileGrid::count)
                .thenComparingInt(TileGrid::columns).thenComparingInt(TileGrid::rows));
        return out;
    }
}

package io.monostream.vision;

import java.util.List;

/**
 * An image ready for the vision embedding (spec §3): the grid it was cut into, the 8-bit tiles
 * after resizing (grid tiles row-major, then the thumbnail if any; for {@code --dump-tiles}),
 * and {@code pixelValues}, the normalised tiles as float32 in [tiles][3][tileSize][tileSize]
 * order (CHW per tile).
 */
public record PreprocessedImage(TileGrid grid, List<RgbImage> tiles, float[] pixelValues, int tileSize) {
    public PreprocessedImage {
        tiles = List.copyOf(tiles);
        if (pixelValues.length != (long) tiles.size() * 3 * tileSize * tileSize) {
            throw new IllegalArgumentException(pixelValues.length + " pixel values do not match "
                    + tiles.size() + " tiles of 3x" + tileSize + "x" + tileSize);
        }
    }

    /** Heap bytes one tile of this side holds: its float32 pixel values and its 8-bit RGB tile. */
    public static long tileHeapBytes(int tileSize) {
        return 3L * tileSize * tileSize * (Float.BYTES + 1);
    }

    /** Heap bytes its tiles hold: the pixel values and the 8-bit tiles. */
    public long heapBytes() {
        long total = (long) Float.BYTES * pixelValues.length;
        for (RgbImage tile : tiles) {
            total += tile.rgb().length;
        }
        return total;
    }

    /** Tiles fed to the model, thumbnail included. */
    public int tileCount() {
        return tiles.size();
    }
}

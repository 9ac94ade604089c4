package io.monostream.vision;

/**
 * How an image becomes tiles (spec §3): tile side in pixels, the allowed range of grid tile
 * counts, whether a thumbnail is appended, and whether dynamic tiling is on at all (off means
 * one tile of the whole image).
 */
public record TilingOptions(int tileSize, int minTiles, int maxTiles, boolean useThumbnail, boolean dynamic) {
    public TilingOptions {
        if (tileSize <= 0) {
            throw new IllegalArgumentException("tileSize must be positive, got " + tileSize);
        }
        if (minTiles < 1 || maxTiles < minTiles) {
            throw new IllegalArgumentException("need 1 <= minTiles <= maxTiles, got " + minTiles + ".." + maxTiles);
        }
    }

    /** Mono-InternVL's defaults: 448-pixel tiles, 1..maxTiles, thumbnail, dynamic. */
    public static TilingOptions internVl(int maxTiles) {
        return new TilingOptions(448, 1, maxTiles, true, true);
    }
}

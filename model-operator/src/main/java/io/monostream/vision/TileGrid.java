package io.monostream.vision;

/** A dynamic-tiling grid (spec §3): {@code columns} tiles across, {@code rows} tiles down. */
public record TileGrid(int columns, int rows) {
    public TileGrid {
        if (columns <= 0 || rows <= 0) {
            throw new IllegalArgumentException("grid must be positive: " + columns + "x" + rows);
        }
    }

    /** Number of tiles in the grid, without any thumbnail. */
    public int count() {
        return columns * rows;
    }
}

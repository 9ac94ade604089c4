package io.monostream.model;

import ai.djl.ndarray.NDArray;

/**
 * Space-to-depth over the patch grid (spec §4). With scale s, token (Y, X) packs the s×s block
 * P[sY + dy][sX + dx] in (dy, dx) row-major order. v2 orders tokens row-major (t = (G/s)·Y + X);
 * v1 orders them column-major (t = (G/s)·X + Y).
 */
public final class PixelShuffle {
    public enum Version {
        V1,
        V2;

        static Version parse(String name) {
            if (name == null || name.equalsIgnoreCase("v2")) {
                return V2;
            }
            if (name.equalsIgnoreCase("v1")) {
                return V1;
            }
            throw new IllegalArgumentException("unsupported ps_version '" + name + "' (v1 or v2)");
        }
    }

    private PixelShuffle() {}

    /** @param p [T, G, G, C] indexed [tile][y][x][c]; @return [T, (G/s)², C·s²] */
    public static NDArray apply(NDArray p, int scale, Version version) {
        long t = p.getShape().get(0);
        long g = p.getShape().get(1);
        long c = p.getShape().get(3);
        long h = g / scale;
        NDArray blocks = p.reshape(t, h, scale, h, scale, c); // [T, Y, dy, X, dx, C]
        NDArray ordered = version == Version.V2
                ? blocks.transpose(0, 1, 3, 2, 4, 5) // [T, Y, X, dy, dx, C]
                : blocks.transpose(0, 3, 1, 2, 4, 5); // [T, X, Y, dy, dx, C]
        return ordered.reshape(t, h * h, c * scale * scale);
    }
}

package io.monostream.vision;

/**
 * Pillow's {@code Image.resize(size, Image.BICUBIC)} for 8-bit RGB, re-implemented from its
 * documented algorithm so tiles match the reference preprocessing (spec §3.4).
 *
 * <p>The resize is separable: a horizontal pass into an 8-bit clipped intermediate, then a
 * vertical pass. Each output sample is a weighted sum over the source samples under a cubic
 * kernel (a = −0.5) centred on the output pixel's centre; when shrinking, the kernel is widened
 * by the scale factor. Weights are normalised to sum to 1, then rounded to fixed point with
 * 22 fraction bits; sums start at one half so the final shift rounds. A pass is skipped when
 * its dimension does not change, as Pillow does.
 *
 * <pre>{@code
 * RgbImage small = PillowBicubic.resize(image, 448, 448);
 * }</pre>
 */
public final class PillowBicubic {
    private static final double A = -0.5;
    private static final double SUPPORT = 2.0;
    private static final int PRECISION_BITS = 32 - 8 - 2;
    private static final int HALF = 1 << (PRECISION_BITS - 1);

    private PillowBicubic() {
    }

    /** {@code src} resized to {@code width x height}. Same size returns a copy. */
    public static RgbImage resize(RgbImage src, int width, int height) {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("target size must be positive: " + width + "x" + height);
        }
        boolean horizontal = width != src.width();
        boolean vertical = height != src.height();
        Coefficients cx = horizontal ? Coefficients.of(src.width(), width) : null;
        Coefficients cy = vertical ? Coefficients.of(src.height(), height) : null;

        byte[] pixels = src.rgb();
        int rowsIn = src.height();
        int firstRow = 0;
        if (horizontal) {
            // Only the source rows the vertical pass reads need the horizontal pass.
            int lastRow = src.height();
            if (vertical) {
                firstRow = cy.start[0];
                lastRow = cy.start[height - 1] + cy.length[height - 1];
            }
            rowsIn = lastRow - firstRow;
            pixels = horizontalPass(pixels, src.width(), firstRow, rowsIn, width, cx);
        }
        if (vertical) {
            pixels = verticalPass(pixels, width, firstRow, height, cy);
        }
        if (!horizontal && !vertical) {
            pixels = pixels.clone();
        }
        return new RgbImage(width, height, pixels);
    }

    private static byte[] horizontalPass(byte[] in, int inWidth, int firstRow, int rows, int outWidth, Coefficients c) {
        byte[] out = new byte[rows * outWidth * 3];
        int k = c.size;
        for (int y = 0; y < rows; y++) {
            int rowIn = (y + firstRow) * inWidth * 3;
            int o = y * outWidth * 3;
            for (int x = 0; x < outWidth; x++) {
                int s0 = HALF;
                int s1 = HALF;
                int s2 = HALF;
                int p = rowIn + c.start[x] * 3;
                int w = x * k;
                for (int t = 0, n = c.length[x]; t < n; t++, p += 3) {
                    int weight = c.weights[w + t];
                    s0 += (in[p] & 0xFF) * weight;
                    s1 += (in[p + 1] & 0xFF) * weight;
                    s2 += (in[p + 2] & 0xFF) * weight;
                }
                out[o++] = clip(s0);
                out[o++] = clip(s1);
                out[o++] = clip(s2);
            }
        }
        return out;
    }

    // `in` holds source rows from firstRow on; coefficient starts are absolute row numbers.
    private static byte[] verticalPass(byte[] in, int width, int firstRow, int outHeight, Coefficients c) {
        int stride = width * 3;
        byte[] out = new byte[outHeight * stride];
        int k = c.size;
        int[] acc = new int[stride];
        for (int y = 0; y < outHeight; y++) {
            java.util.Arrays.fill(acc, HALF);
            int base = (c.start[y] - firstRow) * stride;
            int w = y * k;
            for (int t = 0, n = c.length[y]; t < n; t++) {
                int weight = c.weights[w + t];
                int row = base + t * stride;
                for (int i = 0; i < stride; i++) {
                    acc[i] += (in[row + i] & 0xFF) * weight;
                }
            }
            int o = y * stride;
            for (int i = 0; i < stride; i++) {
                out[o + i] = clip(acc[i]);
            }
        }
        return out;
    }

    private static byte clip(int sum) {
        if (sum <= 0) {
            return 0;
        }
        if (sum >= (255 << PRECISION_BITS)) {
            return (byte) 255;
        }
        return (byte) (sum >> PRECISION_BITS);
    }

    static double kernel(double x) {
        x = Math.abs(x);
        if (x < 1.0) {
            return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
        }
        if (x < 2.0) {
            return (((x - 5.0) * x + 8.0) * x - 4.0) * A;
        }
        return 0.0;
    }

    /** Per output index: first source index, tap count, and {@code size} fixed-point weights. */
    record Coefficients(int size, int[] start, int[] length, int[] weights) {
        static Coefficients of(int inSize, int outSize) {
            double scale = (double) inSize / outSize;
            double filterScale = Math.max(scale, 1.0);
            double support = SUPPORT * filterScale;
            int size = (int) Math.ceil(support) * 2 + 1;
            int[] start = new int[outSize];
            int[] length = new int[outSize];
            int[] weights = new int[outSize * size];
            double[] w = new double[size];
            double inv = 1.0 / filterScale;
            for (int o = 0; o < outSize; o++) {
                double center = (o + 0.5) * scale;
                // (int) truncates toward zero, as the C cast does; the clamp makes the sign moot
                int lo = Math.max((int) (center - support + 0.5), 0);
                int hi = Math.min((int) (center + support + 0.5), inSize);
                int n = hi - lo;
                double sum = 0.0;
                for (int t = 0; t < n; t++) {
                    w[t] = kernel((t + lo - center + 0.5) * inv);
                    sum += w[t];
                }
                for (int t = 0; t < n; t++) {
                    double v = sum != 0.0 ? w[t] / sum : w[t];
                    double scaled = v * (1 << PRECISION_BITS);
                    weights[o * size + t] = (int) (v < 0 ? scaled - 0.5 : scaled + 0.5);
                }
                start[o] = lo;
                length[o] = n;
            }
            return new Coefficients(size, start, length, weights);
        }
    }
}

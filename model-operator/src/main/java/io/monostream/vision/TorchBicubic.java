package io.monostream.vision;

/**
 * PyTorch's {@code F.interpolate(x, size=(outH, outW), mode='bicubic', align_corners=False)}
 * in fp32, used to resize the position-embedding table when the patch grid is not the
 * checkpoint's (spec §4).
 *
 * <p>Layout is {@code [channels][h][w]}, row-major: element (c, y, x) is at
 * {@code (c * h + y) * w + x}. For the position table pass it as {@code [C][32][32]}
 * (transpose the [1024, C] rows first).
 *
 * <p>The algorithm, per output index i along one axis: scale = in/out (float),
 * src = scale·(i + 0.5) − 0.5, taps at floor(src) − 1 … floor(src) + 2 clamped to the border,
 * weights from the cubic convolution kernel with A = −0.75 at t = src − floor(src). Each output
 * value sums four rows, each row itself the sum of four columns, accumulated in that order in
 * float. Resizing to the same size is an exact identity (spec invariant 5): t is 0 and the
 * weights are exactly (0, 1, 0, 0), and torch itself copies.
 *
 * <p>Against torch 1.13 on CPU the result agrees to a few float ulps (max abs difference
 * about 6e-6 on unit-variance input), not bit for bit: torch's AVX2 kernel rounds some
 * weights and sums differently. Bit-exact where the weights are exact (e.g. 32 → 16).
 */
public final class TorchBicubic {
    private static final float A = -0.75f;

    private TorchBicubic() {
    }

    /** {@code src} ([channels][inH][inW]) resized to [channels][outH][outW]. */
    public static float[] resize(float[] src, int channels, int inH, int inW, int outH, int outW) {
        if (channels <= 0 || inH <= 0 || inW <= 0 || outH <= 0 || outW <= 0) {
            throw new IllegalArgumentException("sizes must be positive: " + channels + "x" + inH + "x" + inW
                    + " -> " + outH + "x" + outW);
        }
        if (src.length != channels * inH * inW) {
            throw new IllegalArgumentException("input has " + src.length + " values, expected "
                    + channels + "x" + inH + "x" + inW);
        }
        if (inH == outH && inW == outW) {
            return src.clone(); // torch also short-cuts the same size to a copy
        }
        Taps ty = Taps.of(inH, outH);
        Taps tx = Taps.of(inW, outW);
        float[] out = new float[channels * outH * outW];
        for (int c = 0; c < channels; c++) {
            int plane = c * inH * inW;
            int outPlane = c * outH * outW;
            for (int y = 0; y < outH; y++) {
                for (int x = 0; x < outW; x++) {
                    float acc = 0f;
                    for (int j = 0; j < 4; j++) {
                        int row = plane + ty.index[y * 4 + j] * inW;
                        float r = 0f;
                        for (int i = 0; i < 4; i++) {
                            float term = src[row + tx.index[x * 4 + i]] * tx.weight[x * 4 + i];
                            r = i == 0 ? term : r + term;
                        }
                        float term = r * ty.weight[y * 4 + j];
                        acc = j == 0 ? term : acc + term;
                    }
                    out[outPlane + y * outW + x] = acc;
                }
            }
        }
        return out;
    }

    /** Four clamped source indices and weights per output index along one axis. */
    private record Taps(int[] index, float[] weight) {
        static Taps of(int in, int out) {
            float scale = (float) in / (float) out;
            int[] index = new int[out * 4];
            float[] weight = new float[out * 4];
            for (int i = 0; i < out; i++) {
                float real = scale * ((float) i + 0.5f) - 0.5f;
                int floor = (int) Math.floor(real);
                float t = real - floor;
                float t2 = 1.0f - t;
                weight[i * 4] = outer(t + 1.0f);
                weight[i * 4 + 1] = inner(t);
                weight[i * 4 + 2] = inner(t2);
                weight[i * 4 + 3] = outer(t2 + 1.0f);
                for (int j = 0; j < 4; j++) {
                    index[i * 4 + j] = Math.max(Math.min(floor - 1 + j, in - 1), 0);
                }
            }
            return new Taps(index, weight);
        }

        // |x| <= 1
        private static float inner(float x) {
            return ((A + 2f) * x - (A + 3f)) * x * x + 1f;
        }

        // 1 < |x| < 2
        private static float outer(float x) {
            return ((A * x - 5f * A) * x + 8f * A) * x - 4f * A;
        }
    }
}

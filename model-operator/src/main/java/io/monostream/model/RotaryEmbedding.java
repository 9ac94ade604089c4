package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.monostream.torch.Aten;

/**
 * Rotate-half (NeoX) rotary position embedding with the checkpoint's scaling (spec §6):
 * dims j and j + d/2 share frequency θ^(−2(j mod d/2)/d). Dynamic NTK raises the base once
 * the total length S passes {@code max_position_embeddings}; it is computed per forward from
 * the length after that forward, which is what the reference does for a fresh sequence.
 */
final class RotaryEmbedding {
    private final int headDim;
    private final double theta;
    private final String scalingType;
    private final double scalingFactor;
    private final int maxPositions;

    /** @param scalingType null, "dynamic" or "linear" */
    RotaryEmbedding(int headDim, double theta, String scalingType, double scalingFactor, int maxPositions) {
        if (scalingType != null && !scalingType.equals("dynamic") && !scalingType.equals("linear")) {
            throw new IllegalArgumentException("unsupported rope_scaling type '" + scalingType + "' (dynamic or linear)");
        }
        this.headDim = headDim;
        this.theta = theta;
        this.scalingType = scalingType;
        this.scalingFactor = scalingFactor;
        this.maxPositions = maxPositions;
    }

    /** The base in use when the sequence is {@code totalLength} long. */
    double base(int totalLength) {
        if ("dynamic".equals(scalingType) && totalLength > maxPositions) {
            double f = scalingFactor;
            return theta * Math.pow((f * totalLength / maxPositions) - (f - 1), (double) headDim / (headDim - 2));
        }
        return theta;
    }

    /**
     * cos and sin for positions [start, start + length), each [length, headDim] fp32, for a
     * sequence that is {@code start + length} long after this forward. Computed here in fp32
     * arithmetic, as the reference does (t, t/factor and t·inv_freq are single IEEE operations;
     * cos and sin are rounded from double, within an ulp of libtorch's): a decode step then costs
     * two small copies instead of a dozen libtorch calls.
     */
    NDList cosSin(NDManager manager, int start, int length) {
        float[][] t = tables(manager, start, length);
        return new NDList(Aten.fromFloats(manager, t[0], length, headDim), Aten.fromFloats(manager, t[1], length, headDim));
    }

    /** {@link #cosSin} as fp32 arrays on the heap: {cos, sin}, each [length · headDim]. */
    float[][] tables(NDManager manager, int start, int length) {
        double base = base(start + length);
        float[] invFreq = base == theta ? thetaInvFreq(manager) : invFreq(manager, base);
        int half = headDim / 2;
        float[] cos = new float[length * headDim];
        float[] sin = new float[length * headDim];
        boolean linear = "linear".equals(scalingType);
        for (int i = 0; i < length; i++) {
            float t = start + i;
            if (linear) {
                t = t / (float) scalingFactor;
            }
            for (int j = 0; j < half; j++) {
                float angle = t * invFreq[j];
                float c = (float) Math.cos(angle);
                float si = (float) Math.sin(angle);
                cos[i * headDim + j] = c;
                cos[i * headDim + j + half] = c;
                sin[i * headDim + j] = si;
                sin[i * headDim + j + half] = si;
            }
        }
        return new float[][] {cos, sin};
    }

    /** inv_freq_i = 1 / base^(2i/d), computed by libtorch in fp32 exactly as the reference does. */
    private float[] invFreq(NDManager manager, double base) {
        try (NDManager scope = manager.newSubManager()) {
            NDArray exponents = scope.arange(0, headDim, 2, DataType.FLOAT32).div((float) headDim);
            return exponents.getNDArrayInternal().rpow((float) base).getNDArrayInternal().rdiv(1f).toFloatArray();
        }
    }

    /** The frequencies at the checkpoint's own base, the same for every forward until dynamic NTK starts. */
    private float[] thetaInvFreq(NDManager manager) {
        float[] cached = thetaInvFreq;
        if (cached == null) {
            cached = invFreq(manager, theta);
            thetaInvFreq = cached;
        }
        return cached;
    }

    private volatile float[] thetaInvFreq;

    /** x' = x·cos + rotate_half(x)·sin; x is [L, heads, d], cos/sin are [L, d]. */
    static NDArray apply(NDArray x, NDArray cos, NDArray sin) {
        long half = x.getShape().get(2) / 2;
        NDArray first = x.get(":, :, :{}", half);
        NDArray second = x.get(":, :, {}:", half);
        NDArray rotated = NDArrays.concat(new NDList(second.neg(), first), 2);
        NDArray c = cos.expandDims(1);
        NDArray s = sin.expandDims(1);
        return x.mul(c).add(rotated.mul(s));
    }
}

package io.monostream.runtime;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Picks the next token from fp32 logits: greedy (argmax, first index on ties) or seeded sampling
 * with temperature, top-k and top-p. One sampler per request, so a replay draws the same tokens.
 */
public final class Sampler {
    private final SamplingParams params;
    private final SplittableRandom random;

    public Sampler(SamplingParams params) {
        this.params = params;
        this.random = new SplittableRandom(params.seed());
    }

    /**
     * {@link #next(float[])} over logits[from .. from + length) of a larger array (a batch's
     * logits, row after row), without copying them for greedy decoding.
     */
    public int next(float[] logits, int from, int length) {
        if (params.isGreedy()) {
            return argmax(logits, from, length);
        }
        return next(java.util.Arrays.copyOfRange(logits, from, from + length));
    }

    public int next(float[] logits) {
        if (params.isGreedy()) {
            return argmax(logits);
        }
        int[] order = candidates(logits);
        int keep = params.topK() > 0 ? Math.min(params.topK(), order.length) : order.length;
        double max = logits[order[0]];
        double[] probs = new double[keep];
        double sum = 0;
        for (int i = 0; i < keep; i++) {
            probs[i] = Math.exp((logits[order[i]] - max) / params.temperature());
            sum += probs[i];
        }
        if (params.topP() < 1) {
            // smallest prefix whose mass reaches top_p (at least one token)
            double cumulative = 0;
            int cut = keep;
            for (int i = 0; i < keep; i++) {
                cumulative += probs[i] / sum;
                if (cumulative >= params.topP()) {
                    cut = i + 1;
                    break;
                }
            }
            keep = cut;
            sum = 0;
            for (int i = 0; i < keep; i++) {
                sum += probs[i];
            }
        }
        double u = random.nextDouble() * sum;
        double acc = 0;
        for (int i = 0; i < keep; i++) {
            acc += probs[i];
            if (u < acc) {
                return order[i];
            }
        }
        return order[keep - 1];
    }

    /**
     * Token ids worth sampling, highest logit first (ties by lower id). Tokens more than
     * {@value #NEGLIGIBLE} temperatures below the maximum (relative probability under e^-40) are
     * left out, so a step sorts a handful of candidates rather than the whole vocabulary.
     */
    private int[] candidates(float[] logits) {
        float max = logits[argmax(logits)];
        double floor = max - NEGLIGIBLE * params.temperature();
        long[] packed = new long[logits.length];
        int n = 0;
        for (int id = 0; id < logits.length; id++) {
            if (logits[id] >= floor) {
                // ascending sort of (-logit, id) == descending logit, then ascending id
                packed[n++] = ((long) sortable(-logits[id]) << 32) | id;
            }
        }
        Arrays.sort(packed, 0, n);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = (int) packed[i];
        }
        return order;
    }

    private static final double NEGLIGIBLE = 40;

    /** A float's bits mapped so that signed int order is float order. */
    private static int sortable(float f) {
        int bits = Float.floatToIntBits(f);
        return bits >= 0 ? bits : bits ^ 0x7fffffff;
    }

    public static int argmax(float[] logits) {
        return argmax(logits, 0, logits.length);
    }

    /** The index (from {@code from}) of the largest of logits[from .. from + length), the first on ties. */
    static int argmax(float[] logits, int from, int length) {
        int best = from;
        for (int i = from + 1; i < from + length; i++) {
            if (logits[i] > logits[best]) {
                best = i;
            }
        }
        return best - from;
    }
}

package io.monostream.runtime;

/**
 * Decoding parameters. Temperature 0 means greedy. Sampling is seeded, so a replayed request
 * produces the same text.
 */
public record SamplingParams(double temperature, double topP, int topK, long seed) {
    public SamplingParams {
        if (!(temperature >= 0) || Double.isInfinite(temperature)) {
            throw new IllegalArgumentException("temperature must be finite and >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new IllegalArgumentException("top_p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            throw new IllegalArgumentException("top_k must be >= 0 (0 = off), got " + topK);
        }
    }

    public static SamplingParams greedy() {
        return new SamplingParams(0, 1, 0, 0);
    }

    public boolean isGreedy() {
        return temperature == 0;
    }
}

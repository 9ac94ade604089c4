package io.monostream.runtime;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Sampling: greedy and top-k 1 pick the maximum, draws follow softmax(logits / T), top-p cuts the tail, seeds repeat. */
class SamplerTest {
    @Test
    void greedyAndTopKOnePickTheMaximumAndTiesGoToTheLowerId() {
        float[] logits = {0.5f, 3f, -1f, 3f, 2.9f};
        assertEquals(1, new Sampler(SamplingParams.greedy()).next(logits));
        assertEquals(1, new Sampler(new SamplingParams(1.0, 1.0, 1, 9)).next(logits));
    }

    @Test
    void drawsFollowTheSoftmaxAtTheTemperature() {
        // p(1) / p(0) = e^(ln 2 / 1) = 2 at T = 1, and e^(ln 2 / 0.5) = 4 at T = 0.5
        float[] logits = {0f, (float) Math.log(2), -1000f, Float.NEGATIVE_INFINITY};
        assertEquals(2.0 / 3, frequencyOfOne(logits, 1.0), 0.01);
        assertEquals(4.0 / 5, frequencyOfOne(logits, 0.5), 0.01);
    }

    private static double frequencyOfOne(float[] logits, double temperature) {
        Sampler sampler = new Sampler(new SamplingParams(temperature, 1.0, 0, 123));
        int ones = 0;
        int draws = 40_000;
        for (int i = 0; i < draws; i++) {
            int t = sampler.next(logits);
            assertEquals(true, t == 0 || t == 1, "token " + t + " has negligible probability");
            ones += t;
        }
        return (double) ones / draws;
    }

    @Test
    void topPKeepsTheSmallestPrefixReachingP() {
        float[] logits = {0f, (float) Math.log(3), -5f}; // probabilities about 0.25, 0.75, 0.002
        Sampler sampler = new Sampler(new SamplingParams(1.0, 0.7, 0, 5));
        for (int i = 0; i < 1000; i++) {
            assertEquals(1, sampler.next(logits));
        }
    }

    @Test
    void theSameSeedDrawsTheSameTokens() {
        float[] logits = new float[1000];
        for (int i = 0; i < logits.length; i++) {
            logits[i] = (float) Math.sin(i * 0.37) * 3;
        }
        Sampler a = new Sampler(new SamplingParams(1.2, 0.9, 50, 77));
        Sampler b = new Sampler(new SamplingParams(1.2, 0.9, 50, 77));
        for (int i = 0; i < 200; i++) {
            assertEquals(a.next(logits), b.next(logits));
        }
    }
}

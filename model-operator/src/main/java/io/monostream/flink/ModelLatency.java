package io.monostream.flink;

import io.monostream.runtime.Timings;

import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.runtime.metrics.DescriptiveStatisticsHistogram;

/** Model latency figures of one subtask: end-to-end and queue histograms (ms), last prefill/decode (ms). */
final class ModelLatency {
    private static final int WINDOW = 1000;

    private final DescriptiveStatisticsHistogram totalMs = new DescriptiveStatisticsHistogram(WINDOW);
    private final DescriptiveStatisticsHistogram queueMs = new DescriptiveStatisticsHistogram(WINDOW);
    private volatile double lastPrefillMs;
    private volatile double lastDecodeMs;

    static ModelLatency register(MetricGroup g) {
        ModelLatency m = new ModelLatency();
        g.histogram("latencyMs", m.totalMs);
        g.histogram("queueMs", m.queueMs);
        g.gauge("lastPrefillMs", (Gauge<Double>) () -> m.lastPrefillMs);
        g.gauge("lastDecodeMs", (Gauge<Double>) () -> m.lastDecodeMs);
        return m;
    }

    void record(long wallNanos, Timings t) {
        totalMs.update(wallNanos / 1_000_000);
        if (t != null) {
            queueMs.update(t.queueNanos() / 1_000_000);
            lastPrefillMs = t.prefillNanos() / 1e6;
            lastDecodeMs = t.decodeNanos() / 1e6;
        }
    }
}

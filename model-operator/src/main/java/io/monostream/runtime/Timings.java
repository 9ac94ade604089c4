package io.monostream.runtime;

/** Where a request's time went, in nanoseconds. */
public record Timings(long queueNanos, long preprocessNanos, long prefillNanos, long decodeNanos) {
    public long totalNanos() {
        return queueNanos + preprocessNanos + prefillNanos + decodeNanos;
    }
}

package io.monostream.runtime;

/**
 * Where a request's time went, in nanoseconds.
 *
 * @param queueNanos from submission until the first prefill pass that runs part of its prompt, less
 *     its preprocessing: waiting for a slot, KV room or the prefill to reach it
 * @param preprocessNanos image decode, tiling and normalisation
 * @param prefillNanos from that first pass to its first token (with other prompts and decode steps
 *     beside it in the passes)
 * @param decodeNanos from its first token to its last
 */
public record Timings(long queueNanos, long preprocessNanos, long prefillNanos, long decodeNanos) {
    public long totalNanos() {
        return queueNanos + preprocessNanos + prefillNanos + decodeNanos;
    }
}

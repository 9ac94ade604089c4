package io.monostream.runtime;

/**
 * A snapshot of what the engine is doing, for metrics (Flink gauges, logs, benchmarks).
 *
 * @param waiting requests prepared and waiting for KV room or a batch slot
 * @param running sequences prefilled and decoding
 * @param lastDecodeBatch sequences in the most recent decode step
 * @param meanDecodeBatch mean sequences per decode step since start
 * @param prefillTokens prompt tokens run through the model (a shared prefix counts once)
 * @param prefillTokensPerSecond prompt tokens over time spent in prefill forwards
 * @param decodeTokensPerSecond generated tokens over time spent in decode steps
 * @param meanTimeToFirstTokenMillis submit to first generated token, mean over finished prefills
 * @param kvBytesReserved KV cache bytes reserved by admitted sequences
 * @param kvBytesBudget the KV cache budget
 */
public record EngineStats(
        int inFlight,
        int waiting,
        int running,
        long completed,
        long failed,
        int lastDecodeBatch,
        double meanDecodeBatch,
        long prefillTokens,
        double prefillTokensPerSecond,
        double decodeTokensPerSecond,
        double meanTimeToFirstTokenMillis,
        long kvBytesReserved,
        long kvBytesBudget) {}

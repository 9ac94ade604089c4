package io.monostream.flink;

import io.monostream.runtime.EngineStats;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;

import java.util.concurrent.CompletableFuture;

/** What {@link ModelAsyncFunction} needs of an engine; the seam a test may replace. */
interface ModelClient extends AutoCloseable {
    CompletableFuture<GenerationResult> submit(GenerationRequest request);

    String modelName();

    /** The shared engine's figures (queue, batches, throughput, KV use); null when there is no engine behind. */
    default EngineStats stats() {
        return null;
    }

    @Override
    void close() throws Exception;
}

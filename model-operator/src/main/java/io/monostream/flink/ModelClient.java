package io.monostream.flink;

import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;

import java.util.concurrent.CompletableFuture;

/** What {@link ModelAsyncFunction} needs of an engine; the seam a test may replace. */
interface ModelClient extends AutoCloseable {
    CompletableFuture<GenerationResult> submit(GenerationRequest request);

    String modelName();

    @Override
    void close() throws Exception;
}

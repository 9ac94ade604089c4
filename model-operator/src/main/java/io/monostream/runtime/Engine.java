package io.monostream.runtime;

import java.util.concurrent.CompletableFuture;

/**
 * Mono-InternVL loaded once, taking requests asynchronously. One request failing never fails another.
 * (Work in progress: the implementation lands with the inference-engine issue.)
 */
public final class Engine implements AutoCloseable {
    private final EngineOptions options;

    private Engine(EngineOptions options) {
        this.options = options;
    }

    /** Loads the checkpoint named by the options; throws a CheckpointException for a bad checkpoint. */
    public static Engine open(EngineOptions options) {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** Queues a request; the future completes with the result or an EngineException / ImageRejectedException. */
    public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        throw new UnsupportedOperationException("engine not implemented yet");
    }

    /** The model's name (its checkpoint directory name), carried in every result. */
    public String modelName() {
        return options.modelDir().getFileName().toString();
    }

    public EngineOptions options() {
        return options;
    }

    @Override
    public void close() {}
}

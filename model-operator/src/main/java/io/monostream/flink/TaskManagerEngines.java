package io.monostream.flink;

import io.monostream.runtime.Engine;
import io.monostream.runtime.EngineStats;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;

import java.util.concurrent.CompletableFuture;

/**
 * The engines of this JVM (a TaskManager): one per (checkpoint, dtype, device), shared by every
 * subtask, closed with its last user. Statics live per class loader, so in a cluster put the
 * model runtime in Flink's lib/ (DJL's native library can be loaded by one class loader only).
 */
public final class TaskManagerEngines {
    private static final SharedInstances<Engine> ENGINES = new SharedInstances<>();

    private TaskManagerEngines() {}

    /** A lease on the shared engine for {@code spec}, opening it if this is the first user. */
    static ModelClient lease(EngineSpec spec) {
        SharedInstances<Engine>.Lease lease = ENGINES.acquire(spec.shareKey(), () -> Engine.open(spec.toOptions()));
        return new ModelClient() {
            @Override
            public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
                return lease.get().submit(request);
            }

            @Override
            public String modelName() {
                return lease.get().modelName();
            }

            @Override
            public EngineStats stats() {
                return lease.get().stats();
            }

            @Override
            public void close() throws Exception {
                lease.close();
            }
        };
    }

    /** How many subtasks of this JVM use the engine for {@code spec} now (metrics, tests). */
    public static int users(EngineSpec spec) {
        return ENGINES.users(spec.shareKey());
    }
}

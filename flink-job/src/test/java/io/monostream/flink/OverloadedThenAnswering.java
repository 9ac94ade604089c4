package io.monostream.flink;

import io.monostream.runtime.EngineException;
import io.monostream.runtime.FailureReason;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.Timings;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The real model operator whose engine is full (OVERLOADED) for a request's first
 * {@code refusals} submissions, then answers with the request id: drives the job's retry path.
 * Test sources only.
 */
public class OverloadedThenAnswering<IN, OUT> extends ModelAsyncFunction<IN, OUT> {
    /** Submissions per request id, across the serialised copies of this function in one JVM. */
    public static final ConcurrentHashMap<String, AtomicInteger> SUBMISSIONS = new ConcurrentHashMap<>();

    private final int refusals;

    public OverloadedThenAnswering(ModelCallAdapter<IN, OUT> adapter, int refusals) {
        super(new EngineSpec("unused", "f32", "cpu", 0, 1, 1, 1, 1, 1, 1), adapter);
        this.refusals = refusals;
    }

    @Override
    ModelClient connect(EngineSpec spec) {
        return new ModelClient() {
            @Override
            public CompletableFuture<GenerationResult> submit(GenerationRequest r) {
                int n = SUBMISSIONS.computeIfAbsent(r.requestId(), k -> new AtomicInteger()).incrementAndGet();
                if (n <= refusals) {
                    return CompletableFuture.failedFuture(new EngineException(FailureReason.OVERLOADED, "queue full"));
                }
                return CompletableFuture.completedFuture(new GenerationResult(r.requestId(), modelName(), r.task(),
                        r.effectiveQuestion(), "answer after " + n + " submissions", new int[] {1}, new int[] {2}, 1,
                        new float[0], "stop_token", new Timings(0, 0, 0, 0)));
            }

            @Override
            public String modelName() {
                return "overloaded-then-answering";
            }

            @Override
            public void close() {}
        };
    }
}

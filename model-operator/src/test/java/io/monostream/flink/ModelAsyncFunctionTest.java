package io.monostream.flink;

import io.monostream.runtime.EngineException;
import io.monostream.runtime.FailureReason;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.Timings;

import org.apache.flink.api.common.ExecutionConfig;
import org.apache.flink.api.common.JobID;
import org.apache.flink.api.common.JobInfoImpl;
import org.apache.flink.api.common.TaskInfoImpl;
import org.apache.flink.api.common.functions.DefaultOpenContext;
import org.apache.flink.api.common.functions.util.RuntimeUDFContext;
import org.apache.flink.metrics.groups.UnregisteredMetricsGroup;
import org.apache.flink.streaming.api.functions.async.CollectionSupplier;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;

import static org.junit.jupiter.api.Assertions.*;

/** Every way a model call ends completes the Flink result future exactly once, with a record. */
class ModelAsyncFunctionTest {
    /** Requests the test answers by hand, so each path (result, failure, no answer) is driven explicitly. */
    static final class HandDrivenClient implements ModelClient {
        final Map<String, CompletableFuture<GenerationResult>> pending = new HashMap<>();
        RuntimeException refuseSubmit;
        boolean closed;

        @Override
        public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
            if (refuseSubmit != null) {
                throw refuseSubmit;
            }
            CompletableFuture<GenerationResult> f = new CompletableFuture<>();
            pending.put(request.requestId(), f);
            return f;
        }

        @Override
        public String modelName() {
            return "hand";
        }

        @Override
        public void close() {
            closed = true;
        }
    }

    /** In → request with the in string as id; "invalid" builds an invalid request. */
    static final class StringCall implements ModelCallAdapter<String, String> {
        @Override
        public GenerationRequest request(String in) {
            return GenerationRequest.builder(in).question("q").maxNewTokens(in.equals("invalid") ? 0 : 4).build();
        }

        @Override
        public String result(String in, GenerationResult r) {
            return "result " + in + ": " + r.text();
        }

        @Override
        public String failure(String in, Throwable cause) {
            String why = cause instanceof EngineException e ? e.reason().name() : cause.getClass().getSimpleName();
            return "failure " + in + ": " + why;
        }

        @Override
        public String timeout(String in) {
            return "timeout " + in;
        }
    }

    /** Records every completion; a second completion is a bug the test must see. */
    static final class Completions<T> implements ResultFuture<T> {
        final List<Collection<T>> completed = new ArrayList<>();
        final List<Throwable> exceptional = new ArrayList<>();

        @Override
        public void complete(Collection<T> result) {
            completed.add(result);
        }

        @Override
        public void completeExceptionally(Throwable error) {
            exceptional.add(error);
        }

        @Override
        public void complete(CollectionSupplier<T> supplier) {
            try {
                completed.add(supplier.get());
            } catch (Exception e) {
                exceptional.add(e);
            }
        }

        T only() {
            assertEquals(List.of(), exceptional, "never completed exceptionally");
            assertEquals(1, completed.size(), "completed exactly once");
            assertEquals(1, completed.getFirst().size(), "with one record");
            return completed.getFirst().iterator().next();
        }
    }

    private final HandDrivenClient client = new HandDrivenClient();
    private ModelAsyncFunction<String, String> function;

    @BeforeEach
    void open() throws Exception {
        function = new ModelAsyncFunction<>(new EngineSpec("unused", "f32", "cpu", 0, 1, 1, 1, 1, 1, 1), new StringCall()) {
            @Override
            ModelClient connect(EngineSpec spec) {
                return client;
            }
        };
        function.setRuntimeContext(new RuntimeUDFContext(new JobInfoImpl(new JobID(), "test"),
                new TaskInfoImpl("model", 1, 0, 1, 0), getClass().getClassLoader(), new ExecutionConfig(),
                new HashMap<>(), new HashMap<>(), UnregisteredMetricsGroup.createOperatorMetricGroup()));
        function.open(DefaultOpenContext.INSTANCE);
    }

    @AfterEach
    void close() throws Exception {
        function.close();
        assertTrue(client.closed, "closing the function releases its engine lease");
    }

    private static GenerationResult answer(String id, String text) {
        return new GenerationResult(id, "hand", null, "q", text, new int[] {1, 2}, new int[] {3}, 0, new float[0],
                "stop_token", new Timings(1, 2, 3, 4));
    }

    @Test
    void aResultCompletesOnceWhenTheEngineAnswersNotBefore() {
        Completions<String> out = new Completions<>();
        function.asyncInvoke("a", out);
        assertEquals(List.of(), out.completed, "asyncInvoke returns without waiting for the engine");
        client.pending.get("a").complete(answer("a", "hello"));
        assertEquals("result a: hello", out.only());
    }

    @Test
    void anEngineFailureBecomesAFailureRecordWithTheUnwrappedCause() {
        Completions<String> failed = new Completions<>();
        Completions<String> overloaded = new Completions<>();
        function.asyncInvoke("x", failed);
        function.asyncInvoke("y", overloaded);
        client.pending.get("x").completeExceptionally(new CompletionException(
                new EngineException(FailureReason.MODEL_ERROR, "boom")));
        client.pending.get("y").completeExceptionally(new EngineException(FailureReason.OVERLOADED, "full"));
        assertEquals("failure x: MODEL_ERROR", failed.only());
        // OVERLOADED is a record too: the job's retry strategy decides on records (see MonostreamPipeline)
        assertEquals("failure y: OVERLOADED", overloaded.only());
    }

    @Test
    void aRefusedSubmitOrAnInvalidRequestFailsAtOnce() {
        Completions<String> invalid = new Completions<>();
        function.asyncInvoke("invalid", invalid);
        assertEquals("failure invalid: IllegalArgumentException", invalid.only());
        assertFalse(client.pending.containsKey("invalid"), "an invalid request never reaches the engine");

        client.refuseSubmit = new EngineException(FailureReason.ENGINE_CLOSED, "closed");
        Completions<String> refused = new Completions<>();
        function.asyncInvoke("b", refused);
        assertEquals("failure b: ENGINE_CLOSED", refused.only());
    }

    @Test
    void timeoutCompletesWithTheTimeoutRecordEvenIfTheEngineNeverAnswers() {
        Completions<String> out = new Completions<>();
        function.asyncInvoke("slow", out);
        function.timeout("slow", out);
        assertEquals("timeout slow", out.only());
    }
}

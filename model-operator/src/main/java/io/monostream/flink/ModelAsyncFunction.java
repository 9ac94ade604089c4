package io.monostream.flink;

import io.monostream.runtime.EngineStats;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.Gauge;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.apache.flink.streaming.api.functions.async.RichAsyncFunction;

import java.util.Collections;
import java.util.Objects;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * The model stage: submits each record to the TaskManager's shared {@code Engine} and completes
 * from the engine's future, so the task thread never blocks. Use it with
 * {@code AsyncDataStream.unorderedWait}; back-pressure comes from the async capacity.
 *
 * <pre>{@code
 * DataStream<Out> out = AsyncDataStream.unorderedWait(requests,
 *         new ModelAsyncFunction<>(EngineSpec.of(options), adapter), 60, TimeUnit.SECONDS, 16);
 * }</pre>
 *
 * Every path completes the result future exactly once with one record from the adapter:
 * result, failure, or {@link #timeout}.
 */
public class ModelAsyncFunction<IN, OUT> extends RichAsyncFunction<IN, OUT> {
    private static final long serialVersionUID = 1L;

    private final EngineSpec spec;
    private final ModelCallAdapter<IN, OUT> adapter;

    private transient ModelClient client;
    private transient Counter requests;
    private transient Counter failures;
    private transient Counter timeouts;
    private transient ModelLatency latency;

    public ModelAsyncFunction(EngineSpec spec, ModelCallAdapter<IN, OUT> adapter) {
        this.spec = Objects.requireNonNull(spec, "spec");
        this.adapter = Objects.requireNonNull(adapter, "adapter");
    }

    /** The engine this subtask uses. Production always leases the shared real engine; tests may override. */
    ModelClient connect(EngineSpec spec) {
        return TaskManagerEngines.lease(spec);
    }

    @Override
    public void open(OpenContext openContext) throws Exception {
        client = connect(spec);
        MetricGroup g = getRuntimeContext().getMetricGroup().addGroup("model");
        requests = g.counter("requests");
        failures = g.counter("failures");
        timeouts = g.counter("timeouts");
        latency = ModelLatency.register(g);
        registerEngineGauges(g.addGroup("engine"));
    }

    /** The shared engine's own figures, the same in every subtask of a TaskManager. */
    private void registerEngineGauges(MetricGroup g) {
        ModelClient c = client;
        g.gauge("inFlight", (Gauge<Integer>) () -> stats(c).inFlight());
        g.gauge("waiting", (Gauge<Integer>) () -> stats(c).waiting());
        g.gauge("running", (Gauge<Integer>) () -> stats(c).running());
        g.gauge("lastDecodeBatch", (Gauge<Integer>) () -> stats(c).lastDecodeBatch());
        g.gauge("meanDecodeBatch", (Gauge<Double>) () -> stats(c).meanDecodeBatch());
        g.gauge("prefillPasses", (Gauge<Long>) () -> stats(c).prefillPasses());
        g.gauge("largestPrefillPass", (Gauge<Integer>) () -> stats(c).largestPrefillPass());
        g.gauge("interleavedDecodeSteps", (Gauge<Long>) () -> stats(c).interleavedDecodeSteps());
        g.gauge("prefillTokensPerSecond", (Gauge<Double>) () -> stats(c).prefillTokensPerSecond());
        g.gauge("decodeTokensPerSecond", (Gauge<Double>) () -> stats(c).decodeTokensPerSecond());
        g.gauge("meanTimeToFirstTokenMs", (Gauge<Double>) () -> stats(c).meanTimeToFirstTokenMillis());
        g.gauge("kvBytesReserved", (Gauge<Long>) () -> stats(c).kvBytesReserved());
        g.gauge("kvBytesBudget", (Gauge<Long>) () -> stats(c).kvBytesBudget());
    }

    private static EngineStats stats(ModelClient c) {
        EngineStats s = c.stats();
        return s != null ? s : EngineStats.NONE;
    }

    @Override
    public void asyncInvoke(IN in, ResultFuture<OUT> resultFuture) {
        requests.inc();
        long start = System.nanoTime();
        GenerationRequest request;
        try {
            request = adapter.request(in);
        } catch (RuntimeException e) {
            failures.inc();
            resultFuture.complete(Collections.singletonList(adapter.failure(in, e)));
            return;
        }
        try {
            client.submit(request).whenComplete((GenerationResult r, Throwable t) -> {
                if (t != null) {
                    failures.inc();
                    resultFuture.complete(Collections.singletonList(adapter.failure(in, unwrap(t))));
                } else {
                    latency.record(System.nanoTime() - start, r.timings());
                    resultFuture.complete(Collections.singletonList(adapter.result(in, r)));
                }
            });
        } catch (RuntimeException e) { // submit itself refused (closed, overloaded ...)
            failures.inc();
            resultFuture.complete(Collections.singletonList(adapter.failure(in, e)));
        }
    }

    @Override
    public void timeout(IN in, ResultFuture<OUT> resultFuture) {
        timeouts.inc();
        resultFuture.complete(Collections.singletonList(adapter.timeout(in)));
    }

    @Override
    public void close() throws Exception {
        if (client != null) {
            client.close();
            client = null;
        }
    }

    private static Throwable unwrap(Throwable t) {
        while ((t instanceof CompletionException || t instanceof ExecutionException) && t.getCause() != null) {
            t = t.getCause();
        }
        return t;
    }
}

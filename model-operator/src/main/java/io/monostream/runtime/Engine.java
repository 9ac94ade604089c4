package io.monostream.runtime;

import ai.djl.ndarray.NDManager;
import io.monostream.vision.ImageRejectedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Mono-InternVL loaded once, taking requests asynchronously. One request failing never fails
 * another: each future completes with its result, an {@link EngineException} or an
 * {@link ImageRejectedException}.
 *
 * <pre>{@code
 * try (Engine engine = Engine.open(EngineOptions.builder(modelDir).build())) {
 *     GenerationResult r = engine.submit(GenerationRequest.builder("a").image(png).task(Task.OCR).build()).join();
 * }
 * }</pre>
 *
 * <p>Requests wait in a bounded queue (beyond it {@code submit} fails fast with
 * {@link FailureReason#OVERLOADED}) and run on one model thread.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Engine.class);

    private final EngineOptions options;
    private final NDManager manager;
    private final Generator generator;
    private final BlockingQueue<Pending> queue;
    private final Thread worker;
    private volatile boolean closed;

    private record Pending(GenerationRequest request, CompletableFuture<GenerationResult> future, long enqueuedNanos) {}

    private Engine(EngineOptions options, NDManager manager, Generator generator) {
        this.options = options;
        this.manager = manager;
        this.generator = generator;
        this.queue = new ArrayBlockingQueue<>(options.queueCapacity());
        this.worker = Thread.ofPlatform().name("monostream-engine-" + generator.modelName()).daemon().unstarted(this::runLoop);
    }

    /** Loads the checkpoint named by the options; throws a CheckpointException for a bad checkpoint. */
    public static Engine open(EngineOptions options) {
        TorchRuntime.initialise(options.threads());
        long start = System.nanoTime();
        NDManager manager = NDManager.newBaseManager();
        try {
            Generator generator = Generator.load(options, manager);
            Engine engine = new Engine(options, manager, generator);
            engine.worker.start();
            LOG.info("loaded {} ({} {}) in {} ms", generator.modelName(), options.dtype(), options.device(),
                    TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
            return engine;
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** Queues a request; the future completes with the result or an EngineException / ImageRejectedException. */
    public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        CompletableFuture<GenerationResult> future = new CompletableFuture<>();
        if (closed) {
            future.completeExceptionally(new EngineException(FailureReason.ENGINE_CLOSED, "the engine is closed"));
            return future;
        }
        if (!queue.offer(new Pending(request, future, System.nanoTime()))) {
            future.completeExceptionally(new EngineException(FailureReason.OVERLOADED,
                    "the engine's queue is full (" + options.queueCapacity() + " requests); retry later"));
        }
        return future;
    }

    /** Runs a request on the calling thread, bypassing the queue (command line, benchmarks). */
    public GenerationResult generateNow(GenerationRequest request) {
        Generator.Prepared prepared = generator.prepare(request);
        return generator.generate(prepared, 0, () -> expired(request));
    }

    /** The model's name (its checkpoint directory name), carried in every result. */
    public String modelName() {
        return generator.modelName();
    }

    public EngineOptions options() {
        return options;
    }

    /** The loaded model and its tokenizer, for tools that look inside (inspect, benchmarks). */
    public Generator generator() {
        return generator;
    }

    /** Requests waiting to start. */
    public int queueDepth() {
        return queue.size();
    }

    private void runLoop() {
        TorchRuntime.configureThread(options.threads());
        while (!closed || !queue.isEmpty()) {
            Pending p;
            try {
                p = queue.poll(100, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
            if (p == null) {
                continue;
            }
            if (closed) {
                p.future().completeExceptionally(new EngineException(FailureReason.ENGINE_CLOSED, "the engine closed"));
                continue;
            }
            run(p);
        }
        List<Pending> rest = new ArrayList<>();
        queue.drainTo(rest);
        rest.forEach(p -> p.future().completeExceptionally(new EngineException(FailureReason.ENGINE_CLOSED, "the engine closed")));
    }

    private void run(Pending p) {
        if (p.future().isDone()) {
            return; // cancelled while queued
        }
        long queueNanos = System.nanoTime() - p.enqueuedNanos();
        try {
            if (expired(p.request())) {
                throw new EngineException(FailureReason.MODEL_TIMEOUT,
                        "request " + p.request().requestId() + " reached its deadline while queued");
            }
            Generator.Prepared prepared = generator.prepare(p.request());
            GenerationResult result = generator.generate(prepared, queueNanos,
                    () -> p.future().isDone() || expired(p.request()));
            p.future().complete(result);
        } catch (EngineException | ImageRejectedException e) {
            p.future().completeExceptionally(e);
        } catch (IllegalArgumentException e) {
            p.future().completeExceptionally(new EngineException(FailureReason.INVALID_REQUEST, e.getMessage(), e));
        } catch (RuntimeException | OutOfMemoryError e) {
            LOG.warn("request {} failed", p.request().requestId(), e);
            p.future().completeExceptionally(new EngineException(FailureReason.MODEL_ERROR,
                    "model error on request " + p.request().requestId() + ": " + e, e));
        }
    }

    private static boolean expired(GenerationRequest request) {
        Instant deadline = request.deadline();
        return deadline != null && Instant.now().isAfter(deadline);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            worker.join(TimeUnit.MINUTES.toMillis(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        generator.close();
        manager.close();
    }
}

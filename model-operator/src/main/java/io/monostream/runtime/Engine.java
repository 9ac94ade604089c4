package io.monostream.runtime;

import ai.djl.ndarray.NDManager;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.DType;
import io.monostream.torch.Device;
import io.monostream.vision.ImageRejectedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Mono-InternVL loaded once, taking requests asynchronously from any number of threads. One
 * request failing never fails another: each future completes with its result, an
 * {@link EngineException} or an {@link ImageRejectedException}.
 *
 * <pre>{@code
 * try (Engine engine = Engine.open(EngineOptions.builder(modelDir).build())) {
 *     GenerationResult r = engine.submit(GenerationRequest.builder("a").image(png).task(Task.OCR).build()).join();
 * }
 * }</pre>
 *
 * <p>Images are decoded and tiled on a preprocessing thread; one model thread runs a
 * {@link ContinuousBatchScheduler}. At most {@link EngineOptions#queueCapacity()} requests are in
 * flight; beyond that {@code submit} fails fast with {@link FailureReason#OVERLOADED}, which is
 * how back-pressure reaches the caller.
 */
public final class Engine implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Engine.class);

    private final EngineOptions options;
    private final NDManager manager;
    private final Generator generator;
    private final ContinuousBatchScheduler scheduler;
    private final Thread modelThread;
    private final ExecutorService preprocessing;
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean closed;

    private Engine(EngineOptions options, NDManager manager, Generator generator) {
        this.options = options;
        this.manager = manager;
        this.generator = generator;
        this.scheduler = new ContinuousBatchScheduler(generator, options.maxBatch(), options.kvCacheBytes(),
                options.maxPrefillTokens(), options.threads());
        this.modelThread = Thread.ofPlatform().name("monostream-model-" + generator.modelName()).daemon().unstarted(scheduler);
        this.preprocessing = Executors.newSingleThreadExecutor(
                Thread.ofPlatform().name("monostream-preprocess-" + generator.modelName()).daemon().factory());
    }

    /** Loads the checkpoint named by the options; throws a CheckpointException for a bad checkpoint. */
    public static Engine open(EngineOptions options) {
        TorchRuntime.initialise(options.threads());
        long start = System.nanoTime();
        NDManager manager = NDManager.newBaseManager();
        try {
            Generator generator = Generator.load(options, manager);
            Engine engine = new Engine(options, manager, generator);
            engine.modelThread.start();
            LOG.info("loaded {} ({} {}) in {} ms; KV budget {} MiB, batch {}, prefill passes of {} tokens", generator.modelName(),
                    options.dtype(), options.device(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start),
                    options.kvCacheBytes() >> 20, options.maxBatch(), options.maxPrefillTokens());
            warnOfSlowBf16Prefill(options);
            return engine;
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * BF16 on a CPU without AVX-512 (so without BF16 instructions either), where the CPU kernels
     * leave prefill products to libtorch, whose BF16 matmul is slow there: on an AVX-512 CPU
     * without BF16 instructions it ran at a fifth of its FP32 rate. Said once, at open.
     */
    private static void warnOfSlowBf16Prefill(EngineOptions options) {
        if (!"bf16".equals(options.dtype()) || Device.parse(options.device()).type() != Device.Type.CPU) {
            return;
        }
        Optional<CpuKernels> kernel = CpuKernels.get();
        if (kernel.isPresent() && !kernel.get().keepsPlainWeights(DType.BF16)) {
            LOG.warn("bf16 prefill on this CPU ({}) runs through libtorch's BF16 matmul, which is slow without BF16"
                    + " instructions; --dtype f32 may prefill faster", kernel.get().isa());
        }
    }

    /** Queues a request; the future completes with the result or an EngineException / ImageRejectedException. */
    public CompletableFuture<GenerationResult> submit(GenerationRequest request) {
        return submitAll(List.of(request)).get(0);
    }

    /**
     * Queues several requests at once. Requests on the same image (the same bytes and tile limit)
     * share one prefill of the system prompt and image block, and their decodes fork from it
     * (caption and OCR of one image cost one image prefill).
     */
    public List<CompletableFuture<GenerationResult>> submitAll(List<GenerationRequest> requests) {
        long now = System.nanoTime();
        List<List<Integer>> groups = groupByImage(requests);
        List<CompletableFuture<GenerationResult>> byIndex = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            byIndex.add(new CompletableFuture<>());
        }
        for (List<Integer> group : groups) {
            List<CompletableFuture<GenerationResult>> members = group.stream().map(byIndex::get).toList();
            if (closed) {
                members.forEach(f -> f.completeExceptionally(new EngineException(FailureReason.ENGINE_CLOSED, "the engine is closed")));
                continue;
            }
            if (inFlight.addAndGet(group.size()) > options.queueCapacity()) {
                inFlight.addAndGet(-group.size());
                members.forEach(f -> f.completeExceptionally(new EngineException(FailureReason.OVERLOADED,
                        "the engine has " + options.queueCapacity() + " requests in flight; retry later")));
                continue;
            }
            members.forEach(f -> f.whenComplete((r, t) -> inFlight.decrementAndGet()));
            List<GenerationRequest> groupRequests = group.stream().map(requests::get).toList();
            try {
                preprocessing.execute(() -> prepare(groupRequests, members, now));
            } catch (java.util.concurrent.RejectedExecutionException e) {
                members.forEach(f -> f.completeExceptionally(new EngineException(FailureReason.ENGINE_CLOSED, "the engine is closed")));
            }
        }
        return byIndex;
    }

    /** Indices of requests grouped by identical image bytes and tile limit, in first-seen order. */
    private static List<List<Integer>> groupByImage(List<GenerationRequest> requests) {
        List<List<Integer>> groups = new ArrayList<>();
        outer:
        for (int i = 0; i < requests.size(); i++) {
            GenerationRequest r = requests.get(i);
            if (r.image() != null) {
                for (List<Integer> g : groups) {
                    GenerationRequest first = requests.get(g.get(0));
                    if (first.image() != null && first.maxTiles() == r.maxTiles()
                            && (first.image() == r.image() || Arrays.equals(first.image(), r.image()))) {
                        g.add(i);
                        continue outer;
                    }
                }
            }
            List<Integer> g = new ArrayList<>();
            g.add(i);
            groups.add(g);
        }
        return groups;
    }

    /** Touched by the preprocessing thread only. */
    private final RecentImages recentImages = new RecentImages();

    /** Preprocesses one group (requests on the same image bytes) and hands it to the scheduler. */
    private void prepare(List<GenerationRequest> requests, List<CompletableFuture<GenerationResult>> futures, long submitted) {
        GenerationRequest first = requests.get(0);
        boolean image = first.image() != null;
        Generator.Prepared shared = image ? recentImages.get(first) : null;
        List<Sequence> members = new ArrayList<>();
        for (int i = 0; i < requests.size(); i++) {
            CompletableFuture<GenerationResult> f = futures.get(i);
            if (f.isDone()) {
                continue; // cancelled by its caller while it waited to be preprocessed
            }
            try {
                if (shared == null && image) {
                    scheduler.awaitRoomForImage();
                }
                Generator.Prepared p = shared == null ? generator.prepare(requests.get(i)) : generator.prepareLike(shared, requests.get(i));
                if (shared == null && image) {
                    shared = p;
                    recentImages.put(first, p);
                }
                members.add(new Sequence(p, f, submitted));
            } catch (InterruptedException e) {
                // the engine is shutting its preprocessing down: nothing more is prepared
                Thread.currentThread().interrupt();
                for (int j = i; j < requests.size(); j++) {
                    futures.get(j).completeExceptionally(new EngineException(FailureReason.ENGINE_CLOSED, "the engine closed"));
                }
                break;
            } catch (ImageRejectedException e) {
                // the group's one image is bad: every member that still needs it fails the same way
                for (int j = i; j < requests.size(); j++) {
                    futures.get(j).completeExceptionally(e);
                }
                break;
            } catch (EngineException e) {
                f.completeExceptionally(e);
            } catch (IllegalArgumentException e) {
                f.completeExceptionally(new EngineException(FailureReason.INVALID_REQUEST, e.getMessage(), e));
            } catch (RuntimeException | OutOfMemoryError e) {
                f.completeExceptionally(new EngineException(FailureReason.MODEL_ERROR, "preprocessing failed: " + e, e));
            }
        }
        if (!members.isEmpty()) {
            scheduler.enqueue(new ContinuousBatchScheduler.Group(members));
        }
    }

    /** Runs a request and waits for it (command line, tools): the same path as {@link #submit}. */
    public GenerationResult generateNow(GenerationRequest request) {
        try {
            return submit(request).join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw e;
        }
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

    /** What the engine is doing now: queue, batch sizes, throughput, KV cache use. */
    public EngineStats stats() {
        return scheduler.stats(inFlight.get());
    }

    /** How many times the idle engine has given free C heap memory back to the OS (for tests). */
    long heapTrims() {
        return scheduler.heapTrims();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        scheduler.closing();
        preprocessing.shutdown();
        try {
            preprocessing.awaitTermination(1, TimeUnit.MINUTES);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        scheduler.stop();
        try {
            modelThread.join(TimeUnit.MINUTES.toMillis(2));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        generator.close();
        manager.close();
    }
}

package io.monostream.bench;

import io.monostream.checkpoint.ModelConfig;
import io.monostream.checkpoint.RandomCheckpoint;
import io.monostream.prompt.Task;
import io.monostream.runtime.Engine;
import io.monostream.runtime.EngineOptions;
import io.monostream.runtime.EngineStats;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.ProcessMemory;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.DType;
import io.monostream.torch.Device;
import io.monostream.torch.Dispatcher;
import io.monostream.torch.NativeHeap;
import io.monostream.torch.Tensor;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The engine measured against this machine's own limits, every figure a ratio from one run (the
 * machines are shared and noisy; ratios measured together are what count).
 */
public final class EngineBenchmark {
    /** One line of the printed table. */
    public record Line(String measure, String value, String target) {}

    /** Image requests the given-checkpoint bench submits at once to measure concurrent prefill. */
    static final int CONCURRENT_IMAGES = 4;

    private final int threads;
    private final int maxPrefillTokens;
    private final List<Line> lines = new ArrayList<>();

    public EngineBenchmark(int threads, int maxPrefillTokens) {
        this.threads = threads;
        this.maxPrefillTokens = maxPrefillTokens;
    }

    // ---------------------------------------------------------------- one engine's figures

    /** What one engine (one dtype) achieved. */
    record EngineFigures(String dtype, int promptTokens, int tiles, double prefillSeconds, double prefillFlops,
            double decodeTokensPerSecond, double decodeBytesPerToken, double batch8TokensPerSecond,
            double batch8MeanBatch, double batch1TokensPerSecond, double sharedSeconds, double separateSeconds, long loadAnonymousBytes) {
        double prefillTokensPerSecond() {
            return promptTokens / prefillSeconds;
        }
    }

    private EngineOptions.Builder options(Path model, String dtype) {
        return EngineOptions.builder(model).dtype(dtype).threads(threads).maxBatch(8).queueCapacity(64)
                .maxPrefillTokens(maxPrefillTokens);
    }

    /** The image request of every image figure: "Describe the image." with {@code newTokens} to generate. */
    private static GenerationRequest imageRequest(String id, byte[] image, int maxTiles, int newTokens) {
        return GenerationRequest.builder(id).image(image).maxTiles(maxTiles).question("Describe the image.")
                .maxNewTokens(newTokens).ignoreStopTokens(true).build();
    }

    /** Prefill seconds of one image request (median of 3) and the warm-up's result (prompt ids, tiles). */
    private record Prefill(double seconds, GenerationResult warm) {}

    private static Prefill prefill(Engine engine, byte[] image, int maxTiles) {
        GenerationRequest request = imageRequest("prefill", image, maxTiles, 1);
        GenerationResult warm = engine.generateNow(request);
        double[] seconds = new double[3];
        for (int i = 0; i < seconds.length; i++) {
            seconds[i] = engine.generateNow(request).timings().prefillNanos() / 1e9;
        }
        return new Prefill(median(seconds), warm);
    }

    /**
     * {@code count} image requests on different images submitted at once (the given image with one
     * pixel changed per request, so they share no prefill): {seconds until every first token, MB
     * that resident memory rose above where it stood}, each the median of 3 runs after a warm-up;
     * before each run the C heap is trimmed and the peak reset. How far prefill working memory
     * grows with concurrent images, which the engine bounds by its prefill pass.
     */
    private static double[] concurrentImages(Engine engine, byte[] image, int maxTiles, int count) {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            requests.add(imageRequest("concurrent-" + i, variant(image, i), maxTiles, 1));
        }
        double[] seconds = new double[3];
        double[] rise = new double[3];
        for (int run = -1; run < seconds.length; run++) {
            NativeHeap.trim();
            long before = ProcessMemory.resident();
            boolean reset = ProcessMemory.resetPeak();
            long t0 = System.nanoTime();
            engine.submitAll(requests).forEach(CompletableFuture::join);
            long t1 = System.nanoTime();
            if (run >= 0) {
                seconds[run] = (t1 - t0) / 1e9;
                rise[run] = reset ? (ProcessMemory.peakResident() - before) / (double) (1 << 20) : Double.NaN;
            }
        }
        return new double[] {median(seconds), median(rise)};
    }

    /**
     * How long a running text sequence waits for its next token while the image prompt is
     * prefilled beside it: {the longest gap between two of its tokens in seconds, the image's
     * prefill seconds, the passes that prefill took}. The gaps are seen by polling the engine's
     * decode counter every 0.1 ms. Without decode steps between the passes the longest gap would
     * be at least the whole prefill.
     */
    private static double[] tokenWaitBesidePrefill(Engine engine, byte[] image, int maxTiles) {
        GenerationRequest beside = imageRequest("beside", image, maxTiles, 1);
        engine.generateNow(beside); // the image is preprocessed once: below it is queued at once, from the recent images
        long decodedBefore = engine.stats().decodeTokens();
        CompletableFuture<GenerationResult> text = engine.submit(GenerationRequest.builder("running")
                .question("Tell me a long story.").maxNewTokens(4096).ignoreStopTokens(true).build());
        while (engine.stats().decodeTokens() == decodedBefore && !text.isDone()) {
            LockSupport.parkNanos(100_000); // until its first decode step: its prefill is over
        }
        long passesBefore = engine.stats().prefillPasses();
        CompletableFuture<GenerationResult> prefilled = engine.submit(beside);
        long seen = engine.stats().decodeTokens();
        long at = System.nanoTime();
        long longest = 0;
        boolean imageDone = false;
        while (!text.isDone()) {
            long tokens = engine.stats().decodeTokens();
            long now = System.nanoTime();
            if (tokens != seen) {
                longest = Math.max(longest, now - at);
                seen = tokens;
                at = now;
                if (imageDone) {
                    break; // the first token after the image's last pass: that wait is counted too
                }
            }
            imageDone |= prefilled.isDone();
            LockSupport.parkNanos(100_000);
        }
        text.cancel(true);
        GenerationResult r = prefilled.join();
        return new double[] {longest / 1e9, r.timings().prefillNanos() / 1e9, engine.stats().prefillPasses() - passesBefore};
    }

    /**
     * A short text request submitted just after the image request (which is admitted first, and
     * alone when its prompt fills a pass): {the short request's seconds from submission to its
     * first token, the image's seconds to its first token}. Without joining the prefill in
     * progress the short request would wait for the image's whole prefill.
     */
    private static double[] shortPromptBesidePrefill(Engine engine, byte[] image, int maxTiles) {
        GenerationRequest beside = imageRequest("beside", image, maxTiles, 1);
        engine.generateNow(beside); // preprocessed once: below it is queued at once, from the recent images
        CompletableFuture<GenerationResult> prefilled = engine.submit(beside);
        GenerationResult text = engine.generateNow(shortTextRequest());
        GenerationResult imageResult = prefilled.join();
        return new double[] {firstTokenSeconds(text), firstTokenSeconds(imageResult)};
    }

    /**
     * Two image requests on different images, then a short text request, submitted one after the
     * other: {the short request's seconds from submission to its first token, the first image's,
     * the second image's}. The second image joins the first one's prefill behind it, so the short
     * request queued behind the second joins in the next pass; if the second image had to wait for
     * the first one's prefill to end, the short request would wait with it.
     */
    private static double[] shortPromptBehindASecondImage(Engine engine, byte[] image, int maxTiles) {
        GenerationRequest first = imageRequest("first", image, maxTiles, 1);
        GenerationRequest second = imageRequest("second", variant(image, 1), maxTiles, 1);
        engine.generateNow(first); // both preprocessed once: below they are queued at once, from the recent images
        engine.generateNow(second);
        CompletableFuture<GenerationResult> a = engine.submit(first);
        CompletableFuture<GenerationResult> b = engine.submit(second);
        GenerationResult text = engine.generateNow(shortTextRequest());
        return new double[] {firstTokenSeconds(text), firstTokenSeconds(a.join()), firstTokenSeconds(b.join())};
    }

    /** "Hi" with one token to generate: the short request of the prefill-joining figures. */
    private static GenerationRequest shortTextRequest() {
        return GenerationRequest.builder("short").question("Hi").maxNewTokens(1).ignoreStopTokens(true).build();
    }

    private static double firstTokenSeconds(GenerationResult r) {
        return (r.timings().queueNanos() + r.timings().preprocessNanos() + r.timings().prefillNanos()) / 1e9;
    }

    /** {@code image} as a PNG with its top-left pixel set from {@code seed}: a different image for the engine. */
    private static byte[] variant(byte[] image, int seed) {
        try {
            java.awt.image.BufferedImage decoded = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(image));
            if (decoded == null) {
                throw new IllegalArgumentException("the image cannot be decoded by ImageIO to make variants of it");
            }
            java.awt.image.BufferedImage copy = new java.awt.image.BufferedImage(decoded.getWidth(), decoded.getHeight(),
                    java.awt.image.BufferedImage.TYPE_INT_RGB);
            copy.getGraphics().drawImage(decoded, 0, 0, null);
            copy.setRGB(0, 0, 0x10101 * (seed * 37 % 256));
            java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
            javax.imageio.ImageIO.write(copy, "png", out);
            return out.toByteArray();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    /** Decode tokens/s between two snapshots of the engine's counters. */
    private static double decodeRate(EngineStats before, EngineStats after) {
        return (after.decodeTokens() - before.decodeTokens()) / ((after.decodeNanos() - before.decodeNanos()) / 1e9);
    }

    /**
     * Decode over {@code steps} greedy steps of {@code sequences} concurrent text requests: {tokens/s,
     * mean sequences per decode step} (requests join as their prompts are prepared, so the first
     * and last steps may run fewer than all of them).
     */
    private static double[] decode(Engine engine, int sequences, int steps) {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < sequences; i++) {
            requests.add(GenerationRequest.builder("decode-" + i).question("Tell me a story number " + i + ".")
                    .maxNewTokens(steps).ignoreStopTokens(true).build());
        }
        EngineStats before = engine.stats();
        List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
        for (GenerationRequest r : requests) {
            futures.add(engine.submit(r));
        }
        futures.forEach(CompletableFuture::join);
        EngineStats after = engine.stats();
        long tokens = after.decodeTokens() - before.decodeTokens();
        double stepsBefore = before.meanDecodeBatch() > 0 ? before.decodeTokens() / before.meanDecodeBatch() : 0;
        double stepsAfter = after.decodeTokens() / after.meanDecodeBatch();
        return new double[] {decodeRate(before, after), tokens / (stepsAfter - stepsBefore)};
    }

    /**
     * Decode of {@code sequences} concurrent requests over 32 greedy steps: the run with the median
     * tokens/s of 3 after a warm-up of 8 steps (the first batched steps of a process still run
     * through the JIT compiler), as {tokens/s, mean sequences per step}.
     */
    private static double[] decodeMedian(Engine engine, int sequences) {
        decode(engine, sequences, 8);
        double[][] runs = {decode(engine, sequences, 32), decode(engine, sequences, 32), decode(engine, sequences, 32)};
        java.util.Arrays.sort(runs, java.util.Comparator.comparingDouble(r -> r[0]));
        return runs[1];
    }

    /**
     * Decode tokens/s of one sequence over 32 greedy steps after the image prompt (each step attends
     * to the whole image block): the median of 3 runs after a warm-up.
     */
    private static double decodeAfterImage(Engine engine, byte[] image, int maxTiles) {
        GenerationRequest request = imageRequest("decode-after-image", image, maxTiles, 33);
        engine.generateNow(request);
        double[] rates = new double[3];
        for (int i = 0; i < rates.length; i++) {
            EngineStats before = engine.stats();
            engine.generateNow(request);
            EngineStats after = engine.stats();
            rates[i] = decodeRate(before, after);
        }
        return median(rates);
    }

    /** Decode tokens/s of one sequence over 32 greedy steps: the median of 3 runs after a warm-up of 8 steps. */
    private static double decodeOne(Engine engine) {
        return decodeMedian(engine, 1)[0];
    }

    /** Seconds for caption + OCR of one image through the shared prefix, then as two separate requests. */
    private static double[] sharedPrefix(Engine engine, byte[] image, int maxTiles) {
        List<GenerationRequest> tasks = List.of(
                GenerationRequest.builder("caption").image(image).maxTiles(maxTiles).task(Task.CAPTION).maxNewTokens(8).ignoreStopTokens(true).build(),
                GenerationRequest.builder("ocr").image(image).maxTiles(maxTiles).task(Task.OCR).maxNewTokens(8).ignoreStopTokens(true).build());
        double[] shared = new double[3];
        double[] separate = new double[3];
        for (int i = 0; i < 3; i++) {
            long t0 = System.nanoTime();
            engine.submitAll(tasks).forEach(CompletableFuture::join);
            long t1 = System.nanoTime();
            for (GenerationRequest r : tasks) {
                engine.generateNow(r);
            }
            long t2 = System.nanoTime();
            shared[i] = (t1 - t0) / 1e9;
            separate[i] = (t2 - t1) / 1e9;
        }
        return new double[] {median(shared), median(separate)};
    }

    EngineFigures measure(Path model, String dtype, byte[] image, int maxTiles) {
        System.gc();
        long anonymousBefore = ProcessMemory.residentAnonymous();
        try (Engine engine = Engine.open(options(model, dtype).build())) {
            System.gc();
            long loadAnonymous = ProcessMemory.residentAnonymous() - anonymousBefore;
            Prefill p = prefill(engine, image, maxTiles);
            GenerationResult one = p.warm();
            ModelConfig config = engine.generator().model().config();
            double flops = engine.generator().model().flops(one.inputIds(), 0) + visionFlops(config, one.imageTiles());
            double decode1 = decodeOne(engine);
            double[] decode8 = decodeMedian(engine, 8);
            double[] shared = sharedPrefix(engine, image, maxTiles);
            double bytesPerElement = dtype.equals("bf16") ? 2 : 4;
            return new EngineFigures(dtype, one.promptTokens(), one.imageTiles(), p.seconds(), flops, decode1,
                    decodeParameters(config) * bytesPerElement, decode8[0], decode8[1], decode1, shared[0], shared[1], loadAnonymous);
        }
    }

    /** Patch convolution and connector FLOPs for {@code tiles} tiles (spec §4). */
    static double visionFlops(ModelConfig c, int tiles) {
        double patches = Math.pow(c.imageSize() / (double) c.patchSize(), 2) * tiles;
        int vision = c.declaredVisionHiddenSize() == null ? 1024 : c.declaredVisionHiddenSize();
        double conv = 2 * patches * 3 * c.patchSize() * c.patchSize() * vision;
        double tokens = (double) c.tokensPerTile() * tiles;
        int h = c.llm().hiddenSize();
        double mlp = 2 * tokens * (4.0 * vision * h + (double) h * h);
        return conv + mlp;
    }

    /** Parameters one decode step reads: attention and the text expert of every layer, norms, the head, one embedding row. */
    static double decodeParameters(ModelConfig c) {
        ModelConfig.LlmConfig l = c.llm();
        double h = l.hiddenSize();
        double perLayer = (double) l.qkvRows() * h + h * l.numHeads() * l.headDim() + 3 * h * l.intermediateSize() + 2 * h;
        return l.numLayers() * perLayer + (double) l.vocabSize() * h + 2 * h;
    }

    // ---------------------------------------------------------------- machine limits

    /**
     * The CPU the figures were measured on (its model name from /proc/cpuinfo), the kernels'
     * instruction set, where BF16 prefill products go and the BF16 instructions the kernels found:
     * without AVX512-BF16 or AMX-BF16, BF16 products are widened to fp32 and run at the FP32 rate,
     * so BF16 prefill cannot be twice as fast as FP32 there.
     */
    static String cpu() {
        String model = "unknown CPU";
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            model = lines.filter(l -> l.startsWith("model name")).findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(model);
        } catch (IOException | java.io.UncheckedIOException e) {
            // the model name is a label only
        }
        return model + "; " + CpuKernels.get().map(k -> {
            List<String> bf16 = new ArrayList<>();
            if ("avx512bf16".equals(k.isa())) {
                bf16.add("AVX512-BF16");
            }
            if (k.hasAmxBf16()) {
                bf16.add("AMX-BF16");
            }
            return "kernels " + k.isa() + ", BF16 prefill products through "
                    + (k.takesManyRows(DType.BF16) ? "the kernels" : "libtorch") + "; BF16 instructions: "
                    + (bf16.isEmpty() ? "none (BF16 is multiplied at the FP32 rate)" : String.join(", ", bf16));
        }).orElse("CPU kernels off (BF16 instructions unknown)");
    }

    /**
     * The machine's limits for one dtype: FLOP/s of a plain matmul and read bandwidth, measured
     * right before and right after the engine they are compared with, so a ratio's two sides share
     * the same phase of a shared machine.
     */
    record Limits(double matmulBefore, double matmulAfter, double bandwidthBefore, double bandwidthAfter) {
        /** The limits measured before an engine; {@link #after()} measures them again. */
        record Before(DType dtype, double matmul, double bandwidth) {
            static Before measure(DType dtype) {
                return new Before(dtype, plainMatmulFlops(dtype), readBandwidth());
            }

            Limits after() {
                return new Limits(matmul, plainMatmulFlops(dtype), bandwidth, readBandwidth());
            }
        }

        double matmul() {
            return (matmulBefore + matmulAfter) / 2;
        }

        double bandwidth() {
            return (bandwidthBefore + bandwidthAfter) / 2;
        }

        String matmulSpread() {
            return String.format("%.0f before, %.0f after", matmulBefore / 1e9, matmulAfter / 1e9);
        }

        String bandwidthSpread() {
            return String.format("%.1f before, %.1f after", bandwidthBefore / 1e9, bandwidthAfter / 1e9);
        }
    }

    /** FLOP/s of one large plain libtorch matmul (2048×4096 @ 4096×4096) in the given dtype. */
    static double plainMatmulFlops(DType dtype) {
        long m = 2048, k = 4096, n = 4096;
        try (Tensor a = random(new long[] {m, k}, dtype); Tensor b = random(new long[] {k, n}, dtype)) {
            double s = seconds(() -> Dispatcher.call("aten::matmul", "", a, b), 5);
            return 2.0 * m * k * n / s;
        }
    }

    /** Read bandwidth in bytes/s: summing a 1 GiB tensor. */
    static double readBandwidth() {
        long elements = 1L << 28;
        try (Tensor big = random(new long[] {elements}, DType.F32)) {
            double s = seconds(() -> Dispatcher.call("aten::sum", "", big, Optional.empty()), 5);
            return elements * 4 / s;
        }
    }

    private static Tensor random(long[] shape, DType dtype) {
        Tensor t = Tensor.empty(shape, dtype, Device.CPU);
        Dispatcher.callInPlace("aten::normal_", "", t, 0.0, 1.0, Optional.empty());
        return t;
    }

    private static double seconds(Supplier<Tensor> op, int runs) {
        op.get().close();
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long start = System.nanoTime();
            op.get().close();
            t[i] = (System.nanoTime() - start) / 1e9;
        }
        return median(t);
    }

    static double median(double[] v) {
        double[] c = v.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    // ---------------------------------------------------------------- the two modes

    /** The synthetic run: a mid-size random checkpoint, every ratio the issue asks for. */
    public List<Line> synthetic(Path workDir, byte[] image, int maxTiles) throws IOException {
        RandomCheckpoint.Shape shape = RandomCheckpoint.Shape.midSize();
        Path model = workDir.resolve("mid-size");
        long weightBytes = RandomCheckpoint.write(model, shape, 1);
        flushToDisk(model); // else the kernel writes 0.8 GB back while the BF16 engine is measured
        System.err.printf("wrote a mid-size random checkpoint (%d MB BF16) to %s%n", weightBytes >> 20, model);

        // BF16 first. Its peak is counted from just before its engine opens, so the limits'
        // 1 GiB buffer, measured before it, is not in the engine's figure.
        Limits.Before before16 = Limits.Before.measure(DType.BF16);
        NativeHeap.trim(); // what the limits freed is not the engine's either
        System.gc();
        long baseline = ProcessMemory.resident();
        boolean peakReset = ProcessMemory.resetPeak();
        EngineFigures bf16 = null;
        String bf16Error = null;
        long bf16Peak = 0;
        try {
            bf16 = measure(model, "bf16", image, maxTiles);
            bf16Peak = ProcessMemory.peakResident();
        } catch (RuntimeException e) {
            bf16Error = e.getMessage();
        }
        Limits limits16 = before16.after();
        Limits.Before before32 = Limits.Before.measure(DType.F32);
        EngineFigures f32 = measure(model, "f32", image, maxTiles);
        Limits limits32 = before32.after();

        add("CPU", cpu(), "");
        add("prompt", f32.promptTokens() + " tokens (" + f32.tiles() + " tiles of 256)", "");
        if (bf16 != null) {
            add("prefill tokens/s BF16 / FP32", ratio(bf16.prefillTokensPerSecond() / f32.prefillTokensPerSecond())
                    + String.format("  (%.0f vs %.0f tok/s)", bf16.prefillTokensPerSecond(), f32.prefillTokensPerSecond()), ">= 2");
        } else {
            add("prefill tokens/s BF16 / FP32", "n/a: " + bf16Error, ">= 2");
        }
        for (EngineFigures f : bf16 == null ? List.of(f32) : List.of(f32, bf16)) {
            Limits l = f == bf16 ? limits16 : limits32;
            add("prefill FLOP/s / plain matmul, " + (f == bf16 ? "BF16" : "FP32"), ratio(f.prefillFlops() / f.prefillSeconds() / l.matmul())
                    + String.format("  (%.0f vs %.0f GFLOP/s; matmul %s)", f.prefillFlops() / f.prefillSeconds() / 1e9,
                    l.matmul() / 1e9, l.matmulSpread()), ">= 0.9");
        }
        for (EngineFigures f : bf16 == null ? List.of(f32) : List.of(f32, bf16)) {
            Limits l = f == bf16 ? limits16 : limits32;
            double limit = l.bandwidth() / f.decodeBytesPerToken();
            add("decode tok/s / bandwidth limit, " + f.dtype().toUpperCase(), ratio(f.decodeTokensPerSecond() / limit)
                    + String.format("  (%.1f vs %.1f tok/s at %.1f GB/s: %s)", f.decodeTokensPerSecond(), limit,
                    l.bandwidth() / 1e9, l.bandwidthSpread()), ">= 0.6");
            add("decode tok/s 8 sequences / 1, " + f.dtype().toUpperCase(), ratio(f.batch8TokensPerSecond() / f.batch1TokensPerSecond())
                    + String.format("  (%.1f vs %.1f tok/s; %.1f sequences per step on average)", f.batch8TokensPerSecond(),
                    f.batch1TokensPerSecond(), f.batch8MeanBatch()), ">= 4");
            add("caption+OCR shared prefix / separate, " + f.dtype().toUpperCase(), ratio(f.sharedSeconds() / f.separateSeconds())
                    + String.format("  (%.2f vs %.2f s)", f.sharedSeconds(), f.separateSeconds()), "<= 0.6");
        }
        if (bf16 != null) {
            add("resident after BF16 load / BF16 weight bytes", ratio((double) bf16.loadAnonymousBytes() / weightBytes)
                    + String.format("  (%d MB of anonymous memory for %d MB of weights)", bf16.loadAnonymousBytes() >> 20,
                    weightBytes >> 20), "<= 1.3");
            add("peak resident / BF16 weight bytes", ratio((double) bf16Peak / weightBytes)
                    + String.format("  (%d MB peak%s, %d MB of it before loading; weights %d MB; net %.2f)", bf16Peak >> 20,
                    peakReset ? " while the BF16 engine ran" : " since the process started",
                    baseline >> 20, weightBytes >> 20, (double) (bf16Peak - baseline) / weightBytes), "<= 1.3");
        }
        return lines;
    }

    /** Forces every file of {@code dir} to the disk. */
    private static void flushToDisk(Path dir) throws IOException {
        try (var files = java.nio.file.Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE)) {
                    ch.force(true);
                }
            }
        }
    }

    /** A given checkpoint and image: prefill and decode figures to compare with other implementations. */
    public List<Line> model(Path model, String dtype, byte[] image, int maxTiles) {
        try (Engine engine = Engine.open(options(model, dtype).build())) {
            Prefill p = prefill(engine, image, maxTiles);
            double decode = decodeOne(engine);
            double[] decode8 = decodeMedian(engine, 8);
            double afterImage = decodeAfterImage(engine, image, maxTiles);
            long peakSoFar = ProcessMemory.peakResident();
            double[] concurrent = concurrentImages(engine, image, maxTiles, CONCURRENT_IMAGES);
            double[] wait = tokenWaitBesidePrefill(engine, image, maxTiles);
            double[] beside = shortPromptBesidePrefill(engine, image, maxTiles);
            double[] behind = shortPromptBehindASecondImage(engine, image, maxTiles);
            add("model", model.toString() + " (" + dtype + ", " + threads + " threads)", "");
            add("CPU", cpu(), "");
            add("prompt", p.warm().promptTokens() + " tokens, " + p.warm().imageTiles() + " tiles", "");
            add("prefill seconds (median of 3 after warm-up)", String.format("%.3f", p.seconds()), "");
            add("prefill tokens/s", String.format("%.1f", p.warm().promptTokens() / p.seconds()), "");
            add("decode tokens/s (32 greedy steps, median of 3 after a warm-up)", String.format("%.2f", decode), "");
            add("decode tokens/s, 8 concurrent sequences (same steps)", String.format("%.2f  (%.1f sequences per step on average)",
                    decode8[0], decode8[1]), "");
            add("decode tokens/s after the image prompt (32 greedy steps, median of 3)", String.format("%.2f", afterImage), "");
            add("peak resident memory (before the concurrent images)", (peakSoFar >> 20) + " MB", "");
            add(CONCURRENT_IMAGES + " image requests on different images at once: seconds to every first token",
                    String.format("%.3f  (%.1f prompt tokens/s; passes of at most %d tokens)", concurrent[0],
                            CONCURRENT_IMAGES * p.warm().promptTokens() / concurrent[0], maxPrefillTokens), "");
            add("  resident memory rise during them (median of 3)", String.format("%.0f MB", concurrent[1]), "");
            add("longest wait for a token of a running sequence while the image prompt is prefilled",
                    String.format("%.3f s  (the image's prefill: %.3f s in %.0f passes)", wait[0], wait[1], wait[2]), "");
            add("a short text request submitted just after the image one: seconds to its first token",
                    String.format("%.3f s  (the image's: %.3f s)", beside[0], beside[1]), "");
            add("the same behind a second image request on another image: seconds to its first token",
                    String.format("%.3f s  (the images': %.3f and %.3f s)", behind[0], behind[1], behind[2]), "");
        }
        return lines;
    }

    private void add(String measure, String value, String target) {
        lines.add(new Line(measure, value, target));
    }

    private static String ratio(double r) {
        return String.format("%.2f", r);
    }

    public static void print(String title, List<Line> lines) {
        System.out.println(title);
        int w = lines.stream().mapToInt(l -> l.measure().length()).max().orElse(10);
        for (Line l : lines) {
            System.out.printf("  %-" + w + "s  %-8s  %s%n", l.measure(), l.target(), l.value());
        }
    }
}

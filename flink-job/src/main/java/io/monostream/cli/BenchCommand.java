package io.monostream.cli;

import io.monostream.bench.EngineBenchmark;
import io.monostream.runtime.EngineOptions;
import io.monostream.runtime.TorchRuntime;

import io.monostream.local.SampleImages;

import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Set;
import java.util.stream.Stream;

/**
 * {@code bench}: the engine against this machine's limits (mid-size random checkpoint), or a
 * given checkpoint and image for comparison with other implementations.
 */
final class BenchCommand {
    private BenchCommand() {}

    static int run(String[] args) throws IOException {
        Flags flags = Flags.parse("bench", args, Set.of("model", "image", "max-tiles", "threads", "dtype", "work-dir", "max-prefill-tokens"), Set.of("help", "keep"));
        if (flags.has("help")) {
            System.out.println("""
                    usage: bench [--threads N] [--max-tiles 4] [--max-prefill-tokens N] [--work-dir DIR] [--keep]
                           bench --model DIR --image FILE [--dtype f32|bf16] [--max-tiles N] [--threads N] [--max-prefill-tokens N]
                    Without --model: writes a mid-size random checkpoint (hidden 1024, 8 layers, vocabulary 92553) and prints,
                    as ratios from one run, BF16 vs FP32 prefill, prefill FLOP/s vs a plain matmul, decode vs the memory-
                    bandwidth limit, 8 sequences vs 1, caption+OCR shared prefix vs separate, peak memory vs weights.
                    With --model: prefill and 32 greedy decode steps of 1 and of 8 concurrent text sequences and of one sequence
                    after the image prompt (each the median of 3 after a warm-up), peak memory for that checkpoint and image.
                    Both name the CPU first: its kernels' instruction set and BF16 instructions (without AVX512-BF16 or
                    AMX-BF16, BF16 is multiplied at the FP32 rate).
                    --max-prefill-tokens: the engine's prefill pass (default %d).""".formatted(EngineOptions.DEFAULT_MAX_PREFILL_TOKENS));
            return 0;
        }
        int threads = flags.getInt("threads", 2);
        int maxTiles = flags.getInt("max-tiles", 4);
        TorchRuntime.initialise(threads);
        EngineBenchmark bench = new EngineBenchmark(threads, flags.getInt("max-prefill-tokens", EngineOptions.DEFAULT_MAX_PREFILL_TOKENS));
        if (flags.has("model")) {
            byte[] image = Files.readAllBytes(flags.existingPath("image"));
            EngineBenchmark.print("monostream bench: given checkpoint", bench.model(flags.existingPath("model"),
                    flags.get("dtype", "f32"), image, maxTiles));
            return 0;
        }
        Path work = flags.has("work-dir") ? Files.createDirectories(Path.of(flags.get("work-dir", "."))) : Files.createTempDirectory("monostream-bench");
        try {
            var lines = bench.synthetic(work, sampleImage(896, 896), maxTiles);
            EngineBenchmark.print("monostream bench: mid-size random checkpoint, " + threads + " threads (measure, target, value)", lines);
        } finally {
            if (!flags.has("keep")) {
                try (Stream<Path> files = Files.walk(work)) {
                    files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
                }
            }
        }
        return 0;
    }

    /** The demo's invoice drawn at {@code width}×{@code height}: a page of text, enough for several tiles. */
    static byte[] sampleImage(int width, int height) {
        BufferedImage page = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = page.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_INTERPOLATION, RenderingHints.VALUE_INTERPOLATION_BILINEAR);
        g.drawImage(SampleImages.invoice(), 0, 0, width, height, null);
        g.dispose();
        return SampleImages.png(page);
    }
}

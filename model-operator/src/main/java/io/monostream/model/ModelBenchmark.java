package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.torch.TorchThreads;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * Prefill and decode speed of {@link MonoInternVL} in several {@link ModelOptions} on one
 * checkpoint (a random mid-size one by default), in one run so the ratios are what counts on a
 * shared machine. The prompt is a text prefix, {@code tiles} × 256 image tokens and a text
 * suffix, as a real image prompt; prefill time includes the image embedding and the last row's
 * logits. Figures are medians after a warm-up.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp ... io.monostream.model.ModelBenchmark [--model DIR]
 *     [--tiles 4] [--decode 16] [--runs 3] [--threads 2] [--options f32-plain,f32,bf16-plain,bf16]
 * </pre>
 */
public final class ModelBenchmark {

    /** One configuration's medians. */
    public record Row(String name, int promptTokens, double prefillSeconds, double decodeMsPerToken, long flops,
            long residentAnonBytes) {
        public double prefillTokensPerSecond() {
            return promptTokens / prefillSeconds;
        }

        public double prefillGflops() {
            return flops / prefillSeconds / 1e9;
        }
    }

    private ModelBenchmark() {
    }

    /** Measures each named option set ({@link #options(String)}) on the checkpoint in {@code dir}. */
    public static List<Row> run(Path dir, List<String> names, int tiles, int decodeSteps, int runs) {
        List<Row> rows = new ArrayList<>();
        for (String name : names) {
            rows.add(measure(dir, name, options(name), tiles, decodeSteps, runs));
        }
        return rows;
    }

    /** {@code f32}, {@code bf16}: the defaults; a {@code -plain} suffix: unpacked linears; {@code -explicit}: no SDPA. */
    public static ModelOptions options(String name) {
        String[] parts = name.split("-");
        Precision p = Precision.parse(parts[0]);
        boolean plain = Arrays.asList(parts).contains("plain");
        boolean explicit = Arrays.asList(parts).contains("explicit");
        return new ModelOptions(p, !plain, !explicit);
    }

    private static Row measure(Path dir, String name, ModelOptions options, int tiles, int decodeSteps, int runs) {
        try (Checkpoint checkpoint = Checkpoint.open(dir); NDManager root = NDManager.newBaseManager("PyTorch")) {
            int vocab = checkpoint.config().llm().vocabSize();
            int imageContext = vocab - 1;
            long before = residentAnonBytes();
            try (MonoInternVL model = MonoInternVL.load(checkpoint, root, imageContext, options)) {
                long resident = residentAnonBytes() - before;
                int[] ids = prompt(model, tiles, vocab);
                int size = checkpoint.config().imageSize();
                double[] prefill = new double[runs];
                double[] decode = new double[runs];
                for (int r = -1; r < runs; r++) { // run -1 is the warm-up
                    try (NDManager scope = model.manager().newSubManager();
                            KvCache cache = model.newCache(scope, ids.length + decodeSteps + 1)) {
                        NDArray pixels = scope.randomUniform(-1, 1, new Shape(tiles, 3, size, size));
                        long start = System.nanoTime();
                        int next;
                        try (NDManager step = scope.newSubManager()) {
                            NDArray rows = model.embedImages(pixels);
                            NDArray h = model.forward(step, ids, rows, cache);
                            next = argmax(model.logits(h.get(h.getShape().get(0) - 1)).toFloatArray());
                        }
                        long prefilled = System.nanoTime();
                        for (int i = 0; i < decodeSteps; i++) {
                            try (NDManager step = scope.newSubManager()) {
                                NDArray h = model.forward(step, new int[] {next}, null, cache);
                                next = argmax(model.logits(h.get(0)).toFloatArray());
                            }
                        }
                        long decoded = System.nanoTime();
                        if (r >= 0) {
                            prefill[r] = (prefilled - start) / 1e9;
                            decode[r] = (decoded - prefilled) / 1e6 / Math.max(1, decodeSteps);
                        }
                    }
                }
                return new Row(name, ids.length, median(prefill), median(decode), model.flops(ids, 0), resident);
            }
        }
    }

    /** BOS, 20 text tokens, the image block, 20 text tokens. */
    private static int[] prompt(MonoInternVL model, int tiles, int vocab) {
        int image = tiles * model.tokensPerTile();
        int[] ids = new int[1 + 20 + image + 20];
        ids[0] = 1;
        for (int i = 1; i < ids.length; i++) {
            ids[i] = 3 + (i * 7919) % (vocab - 4);
        }
        Arrays.fill(ids, 21, 21 + image, model.imageContextId());
        return ids;
    }

    /** Anonymous resident memory of this process (libtorch and the Java heap; not the mapped checkpoint). */
    public static long residentAnonBytes() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/status"))) {
            return lines.filter(l -> l.startsWith("RssAnon:")).findFirst()
                    .map(l -> Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024).orElse(-1L);
        } catch (IOException e) {
            return -1;
        }
    }

    private static int argmax(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) {
            if (v[i] > v[best]) {
                best = i;
            }
        }
        return best;
    }

    private static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    public static void main(String[] args) throws IOException {
        Path model = null;
        int tiles = 4;
        int decode = 16;
        int runs = 3;
        int threads = 2;
        List<String> names = List.of("f32-plain-explicit", "f32", "bf16-plain", "bf16");
        for (int i = 0; i < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--model" -> model = Path.of(v);
                case "--tiles" -> tiles = Integer.parseInt(v);
                case "--decode" -> decode = Integer.parseInt(v);
                case "--runs" -> runs = Integer.parseInt(v);
                case "--threads" -> threads = Integer.parseInt(v);
                case "--options" -> names = List.of(v.split(","));
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        TorchThreads.configure(threads);
        Path dir = model;
        Path temp = null;
        if (dir == null) {
            temp = Files.createTempDirectory("monostream-bench");
            dir = RandomCheckpoint.write(temp, RandomCheckpoint.Size.midSize(), 42);
            System.out.println("random mid-size checkpoint: " + RandomCheckpoint.Size.midSize());
        }
        try {
            System.out.printf("%-20s %7s %10s %12s %10s %14s %12s%n", "options", "tokens", "prefill s", "prefill tok/s",
                    "GFLOP/s", "decode ms/tok", "resident MB");
            for (Row r : run(dir, names, tiles, decode, runs)) {
                System.out.printf("%-20s %7d %10.3f %12.1f %10.1f %14.2f %12.0f%n", r.name(), r.promptTokens(),
                        r.prefillSeconds(), r.prefillTokensPerSecond(), r.prefillGflops(), r.decodeMsPerToken(),
                        r.residentAnonBytes() / 1e6);
            }
        } finally {
            if (temp != null) {
                try (Stream<Path> files = Files.list(temp)) {
                    for (Path f : (Iterable<Path>) files::iterator) {
                        Files.delete(f);
                    }
                }
                Files.delete(temp);
            }
        }
    }
}

package io.monostream.cli;

import ai.djl.ndarray.NDManager;
import io.monostream.model.MoeBenchmark;
import io.monostream.runtime.TorchRuntime;

import java.util.List;
import java.util.Set;

/** {@code bench-moe}: the multimodal MoE, partitioned vs compute-both-and-mask, as ratios from one run. */
final class BenchMoeCommand {
    private BenchMoeCommand() {}

    static int run(String[] args) {
        Flags flags = Flags.parse("bench-moe", args,
                Set.of("hidden", "intermediate", "tokens", "iterations", "threads", "device"), Set.of("help"));
        if (flags.has("help")) {
            System.out.println("usage: bench-moe [--hidden 1024] [--intermediate 4096] [--tokens 1024] [--iterations 7] [--threads N] [--device cpu]");
            return 0;
        }
        if (!flags.get("device", "cpu").equals("cpu")) {
            throw new UsageException("bench-moe: only --device cpu is available in this build");
        }
        int hidden = flags.getInt("hidden", 1024);
        int intermediate = flags.getInt("intermediate", 4096);
        int tokens = flags.getInt("tokens", 1024);
        int iterations = flags.getInt("iterations", 7);
        TorchRuntime.initialise(flags.getInt("threads", 0));
        try (NDManager m = NDManager.newBaseManager()) {
            // warm-up (allocator, oneDNN kernels)
            MoeBenchmark.run(m, hidden, intermediate, tokens, 2, new double[] {0, 0.5});
            List<MoeBenchmark.Row> rows = MoeBenchmark.run(m, hidden, intermediate, tokens, iterations,
                    new double[] {0, 0.25, 0.5, 1});
            System.out.printf("multimodal MoE, FP32 CPU: hidden %d, intermediate %d, %d tokens, median of %d%n",
                    hidden, intermediate, tokens, iterations);
            System.out.printf("%-8s %18s %18s %8s %12s%n", "visual", "partitioned ms/tok", "both+mask ms/tok", "ratio", "max |diff|");
            for (MoeBenchmark.Row r : rows) {
                System.out.printf("%-8s %18.4f %18.4f %8.3f %12.2e%n", Math.round(r.visualFraction() * 100) + "%",
                        r.partitionedMsPerToken(), r.maskedMsPerToken(), r.ratio(), r.maxAbsDiff());
            }
        }
        return 0;
    }
}

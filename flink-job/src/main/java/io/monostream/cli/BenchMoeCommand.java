package io.monostream.cli;

import ai.djl.ndarray.NDManager;
import io.monostream.model.MoeBenchmark;
import io.monostream.runtime.TorchRuntime;
import io.monostream.torch.Device;
import io.monostream.torch.TorchException;

import java.util.List;
import java.util.Set;

/**
 * {@code bench-moe}: the multimodal MoE as ratios from one run. On the CPU (FP32): partitioned vs
 * compute-both-and-mask. With {@code --device cuda[:N]} (BF16): the fused kernel of {@code cuda/}
 * vs partitioned vs compute-both-and-mask.
 */
final class BenchMoeCommand {
    private BenchMoeCommand() {}

    static int run(String[] args) {
        Flags flags = Flags.parse("bench-moe", args,
                Set.of("hidden", "intermediate", "tokens", "iterations", "threads", "device"), Set.of("help"));
        if (flags.has("help")) {
            System.out.println("usage: bench-moe [--hidden 1024] [--intermediate 4096] [--tokens 1024] [--iterations 7] [--threads N] [--device cpu|cuda[:N]]");
            return 0;
        }
        int hidden = flags.getInt("hidden", 1024);
        int intermediate = flags.getInt("intermediate", 4096);
        int tokens = flags.getInt("tokens", 1024);
        int iterations = flags.getInt("iterations", 7);
        TorchRuntime.initialise(flags.getInt("threads", 0));
        Device device;
        try {
            device = Device.parse(flags.get("device", "cpu"));
        } catch (TorchException e) {
            throw new UsageException("bench-moe: " + e.getMessage());
        }
        if (device.type() == Device.Type.CUDA) {
            return runOnCuda(device, hidden, intermediate, tokens, iterations);
        }
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

    private static int runOnCuda(Device device, int hidden, int intermediate, int tokens, int iterations) {
        // warm-up (CUDA context, allocator, kernel loading)
        MoeBenchmark.runOnCuda(device, hidden, intermediate, tokens, 2, new double[] {0.5});
        MoeBenchmark.CudaResult result = MoeBenchmark.runOnCuda(device, hidden, intermediate, tokens, iterations,
                new double[] {0, 0.25, 0.5, 1});
        System.out.printf("multimodal MoE, BF16 %s: hidden %d, intermediate %d, %d tokens, median of %d%n",
                device, hidden, intermediate, tokens, iterations);
        System.out.printf("kernel: %s (%s)%n", result.implementation().name(), result.implementation().reason());
        System.out.printf("%-8s %16s %18s %18s %14s %14s %12s%n", "visual", "kernel ms/tok", "partitioned ms/tok",
                "both+mask ms/tok", "kernel/part.", "kernel/mask", "max |diff|");
        for (MoeBenchmark.CudaRow r : result.rows()) {
            System.out.printf("%-8s %16.5f %18.5f %18.5f %14.3f %14.3f %12.2e%n", Math.round(r.visualFraction() * 100) + "%",
                    r.kernelMsPerToken(), r.partitionedMsPerToken(), r.maskedMsPerToken(),
                    r.kernelMsPerToken() / r.partitionedMsPerToken(), r.kernelMsPerToken() / r.maskedMsPerToken(),
                    r.maxAbsDiff());
        }
        return 0;
    }
}

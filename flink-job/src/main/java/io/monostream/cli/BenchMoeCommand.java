package io.monostream.cli;

import io.monostream.model.MoeBenchmark;
import io.monostream.model.Precision;
import io.monostream.runtime.TorchRuntime;
import io.monostream.torch.Device;
import io.monostream.torch.TorchException;

import java.util.Set;

/**
 * {@code bench-moe}: the multimodal MoE as ratios from one run, in FP32 or BF16: partitioned vs
 * compute-both-and-mask. On CUDA in BF16 the fused kernel of {@code cuda/} too: kernel vs
 * partitioned vs compute-both-and-mask.
 */
final class BenchMoeCommand {
    private static final double[] FRACTIONS = {0, 0.25, 0.5, 1};

    private BenchMoeCommand() {}

    static int run(String[] args) {
        Flags flags = Flags.parse("bench-moe", args,
                Set.of("hidden", "intermediate", "tokens", "iterations", "threads", "device", "dtype"), Set.of("help"));
        if (flags.has("help")) {
            System.out.println("usage: bench-moe [--hidden 1024] [--intermediate 4096] [--tokens 1024] [--iterations 7] [--threads N]"
                    + " [--device cpu|cuda[:N]] [--dtype f32|bf16]");
            System.out.println("  --dtype f32|bf16  weights and activations (default f32 on the CPU, bf16 on CUDA: the kernel is BF16 only)");
            return 0;
        }
        int hidden = flags.getInt("hidden", 1024);
        int intermediate = flags.getInt("intermediate", 4096);
        int tokens = flags.getInt("tokens", 1024);
        int iterations = flags.getInt("iterations", 7);
        TorchRuntime.initialise(flags.getInt("threads", 0));
        Device device;
        Precision precision;
        try {
            device = Device.parse(flags.get("device", "cpu"));
            precision = Precision.parse(flags.get("dtype", device.type() == Device.Type.CUDA ? "bf16" : "f32"));
        } catch (TorchException | IllegalArgumentException e) {
            throw new UsageException("bench-moe: " + e.getMessage());
        }
        // warm-up (allocator, oneDNN kernels; on CUDA the context and the kernel's loading)
        MoeBenchmark.run(device, precision, hidden, intermediate, tokens, 2, new double[] {0, 0.5});
        MoeBenchmark.Result result = MoeBenchmark.run(device, precision, hidden, intermediate, tokens, iterations, FRACTIONS);
        System.out.printf("multimodal MoE, %s %s: hidden %d, intermediate %d, %d tokens, median of %d%n",
                precision == Precision.F32 ? "FP32" : "BF16", device.type() == Device.Type.CUDA ? device : "CPU", hidden, intermediate, tokens, iterations);
        if (result.fused()) {
            printWithKernel(result);
        } else {
            if (device.type() == Device.Type.CUDA) {
                System.out.printf("kernel: %s (%s)%n", result.implementation().name(), result.implementation().reason());
            }
            System.out.printf("%-8s %18s %18s %8s %12s%n", "visual", "partitioned ms/tok", "both+mask ms/tok", "ratio", "max |diff|");
            for (MoeBenchmark.Row r : result.rows()) {
                System.out.printf("%-8s %18.4f %18.4f %8.3f %12.2e%n", percent(r), r.partitionedMsPerToken(),
                        r.maskedMsPerToken(), r.ratio(), r.partitionedVsMasked());
            }
        }
        return 0;
    }

    private static void printWithKernel(MoeBenchmark.Result result) {
        System.out.printf("kernel: %s (%s)%n", result.implementation().name(), result.implementation().reason());
        System.out.printf("%-8s %16s %18s %18s %14s %14s %12s%n", "visual", "kernel ms/tok", "partitioned ms/tok",
                "both+mask ms/tok", "kernel/part.", "kernel/mask", "max |diff|");
        for (MoeBenchmark.Row r : result.rows()) {
            System.out.printf("%-8s %16.5f %18.5f %18.5f %14.3f %14.3f %12.2e%n", percent(r),
                    r.kernelMsPerToken(), r.partitionedMsPerToken(), r.maskedMsPerToken(),
                    r.kernelMsPerToken() / r.partitionedMsPerToken(), r.kernelMsPerToken() / r.maskedMsPerToken(),
                    r.kernelVsPartitioned());
        }
    }

    private static String percent(MoeBenchmark.Row r) {
        return Math.round(r.visualFraction() * 100) + "%";
    }
}

package io.monostream.torch;

import java.util.Arrays;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Micro-benchmark of the bridge (not a test): large BF16/F32 matmuls, prepacked vs plain linear,
 * decode-sized GEMV and the fixed cost of one call. Run with
 * {@code java --enable-native-access=ALL-UNNAMED -cp ... io.monostream.torch.BridgeBench [threads]}.
 */
public final class BridgeBench {

    private static final long M = 2048;
    private static final long K = 4096;
    private static final long N = 4096;

    private BridgeBench() {
    }

    public static void main(String[] args) {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        TorchThreads.configure(threads);
        System.out.printf("libtorch %s, %d intra-op threads%n", TorchBridge.get().libraryDir(), TorchThreads.current());

        double flops = 2.0 * M * K * N;
        try (Tensor a16 = randn(new long[] {M, K}, DType.BF16);
             Tensor w16 = randn(new long[] {N, K}, DType.BF16);
             Tensor b16 = randn(new long[] {K, N}, DType.BF16);
             Tensor a32 = a16.to(DType.F32);
             Tensor b32 = b16.to(DType.F32);
             Tensor w32 = w16.to(DType.F32);
             PackedLinear packed16 = PackedLinear.of(w16, null);
             PackedLinear packed32 = PackedLinear.of(w32, null)) {
            double mm16 = seconds(() -> Dispatcher.call("aten::matmul", "", a16, b16), 5);
            report("BF16 matmul 2048x4096 @ 4096x4096", mm16, flops);
            double mm32 = seconds(() -> Dispatcher.call("aten::matmul", "", a32, b32), 3);
            report("F32  matmul 2048x4096 @ 4096x4096", mm32, flops);
            double lin16 = seconds(() -> Dispatcher.call("aten::linear", "", a16, w16, null), 5);
            report("BF16 aten::linear, W [N,K] not prepacked", lin16, flops);
            double pk16 = seconds(() -> packed16.apply(a16), 5);
            report("BF16 prepacked linear (" + (packed16.isPrepacked() ? "mkldnn" : "fallback") + ")", pk16, flops);
            double pk32 = seconds(() -> packed32.apply(a32), 3);
            report("F32  prepacked linear (" + (packed32.isPrepacked() ? "mkldnn" : "fallback") + ")", pk32, flops);

            for (long rows : new long[] {1, 2, 4, 8, 16}) {
                try (Tensor x = randn(new long[] {rows, K}, DType.BF16)) {
                    double plain = seconds(() -> Dispatcher.call("aten::linear", "", x, w16, null), 50);
                    double pk = seconds(() -> packed16.apply(x), 50);
                    System.out.printf("BF16 decode GEMV %2dx4096 @ 4096x4096: plain %.3f ms, prepacked %.3f ms%n",
                            rows, plain * 1e3, pk * 1e3);
                }
            }
        }

        try (Tensor one = Tensor.of(new float[] {1f}, 1); Tensor two = Tensor.of(new float[] {2f}, 1)) {
            int calls = 200_000;
            System.out.printf("per call, 1-element F32: dispatcher aten::mul.Tensor %.2f us,"
                            + " dispatcher aten::silu %.2f us, typed shim aten::add.Tensor %.2f us%n",
                    perCallMicros(() -> Dispatcher.call("aten::mul", "Tensor", one, two), calls),
                    perCallMicros(() -> Dispatcher.call("aten::silu", "", one), calls),
                    perCallMicros(() -> Dispatcher.call("aten::add", "Tensor", one, two), calls));
        }
        System.out.printf("live handles at exit: %d%n", Tensor.liveHandles());
    }

    private static Tensor randn(long[] shape, DType dtype) {
        Tensor t = Tensor.empty(shape, dtype, Device.CPU);
        Dispatcher.callInPlace("aten::normal_", "", t, 0.0, 1.0, Optional.empty()); // generator: None
        return t;
    }

    /** Median seconds of {@code runs} timed calls after two warm-up calls. */
    private static double seconds(Supplier<Tensor> op, int runs) {
        for (int i = 0; i < 2; i++) {
            op.get().close();
        }
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long start = System.nanoTime();
            Tensor out = op.get();
            t[i] = (System.nanoTime() - start) / 1e9;
            out.close();
        }
        Arrays.sort(t);
        return t[runs / 2];
    }

    private static double perCallMicros(Supplier<Tensor> op, int calls) {
        for (int i = 0; i < calls / 4; i++) {
            op.get().close();
        }
        long start = System.nanoTime();
        for (int i = 0; i < calls; i++) {
            op.get().close();
        }
        return (System.nanoTime() - start) / 1e3 / calls;
    }

    private static void report(String what, double seconds, double flops) {
        System.out.printf("%-45s %8.2f ms  %7.1f GFLOP/s%n", what, seconds * 1e3, flops / seconds / 1e9);
    }
}

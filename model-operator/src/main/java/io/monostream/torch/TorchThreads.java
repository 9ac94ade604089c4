package io.monostream.torch;

import ai.djl.pytorch.jni.JniUtils;

/**
 * libtorch's intra-op thread count for the calling OS thread.
 *
 * <p>libtorch keeps this setting per thread: DJL starts it with its own count, but the count
 * reaches only threads that have called {@code JniUtils.setNumThreads}. A thread that never
 * does silently runs ops with a different count (dependencies.md, "Threads"). So every thread
 * that does tensor work (engine workers, benchmark threads, tests) calls this first:
 * <pre>{@code
 * TorchThreads.configure(options.threads());
 * }</pre>
 */
public final class TorchThreads {

    private TorchThreads() {
    }

    /**
     * Sets libtorch's intra-op thread count to {@code n} for the current thread, and the pool of
     * {@link CpuKernels} (one per JVM) to {@code n}.
     */
    public static void configure(int n) {
        if (n < 1) {
            throw new IllegalArgumentException("thread count must be >= 1, got " + n);
        }
        TorchBridge.get(); // DJL's engine (and its JNI library) must be loaded first
        JniUtils.setNumThreads(n);
        CpuKernels.get().ifPresent(k -> k.threads(n));
    }

    /** libtorch's intra-op thread count as seen from the current thread. */
    public static int current() {
        TorchBridge.get();
        return JniUtils.getNumThreads();
    }
}

package io.monostream.runtime;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;

/**
 * libtorch start-up through DJL. DJL's thread setting reaches only OS threads that call it
 * (dependencies.md), so every thread that runs tensor work calls {@link #configureThread}.
 */
public final class TorchRuntime {
    private TorchRuntime() {}

    /** Loads libtorch offline (the native library ships in the jar) and names the engine. */
    public static synchronized void initialise(int threads) {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
        Engine.getEngine("PyTorch");
        configureThread(threads);
    }

    public static void configureThread(int threads) {
        if (threads > 0) {
            JniUtils.setNumThreads(threads);
        } else {
            JniUtils.getNumThreads();
        }
    }
}

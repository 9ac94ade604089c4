package io.monostream.flink;

import io.monostream.runtime.EngineOptions;
import io.monostream.vision.ImageLimits;

import java.io.Serializable;
import java.nio.file.Path;
import java.util.Objects;

/**
 * The serialisable form of {@link EngineOptions} that travels with a Flink job graph
 * ({@code Path} is not serialisable). Two specs with the same {@link #shareKey()} share one
 * engine in a TaskManager.
 */
public record EngineSpec(
        String modelDir,
        String dtype,
        String device,
        int threads,
        long maxImageBytes,
        long maxImagePixels,
        int queueCapacity,
        int maxBatch,
        long kvCacheBytes,
        int maxPrefillTokens) implements Serializable {

    public EngineSpec {
        Objects.requireNonNull(modelDir, "modelDir");
    }

    public static EngineSpec of(EngineOptions o) {
        return new EngineSpec(o.modelDir().toString(), o.dtype(), o.device(), o.threads(),
                o.imageLimits().maxEncodedBytes(), o.imageLimits().maxPixels(), o.queueCapacity(), o.maxBatch(), o.kvCacheBytes(),
                o.maxPrefillTokens());
    }

    public EngineOptions toOptions() {
        return EngineOptions.builder(Path.of(modelDir)).dtype(dtype).device(device).threads(threads)
                .imageLimits(new ImageLimits(maxImageBytes, maxImagePixels))
                .queueCapacity(queueCapacity).maxBatch(maxBatch).kvCacheBytes(kvCacheBytes)
                .maxPrefillTokens(maxPrefillTokens).build();
    }

    /** One engine per (checkpoint, dtype, device) per JVM: the rest of the spec is the first user's. */
    public String shareKey() {
        return Path.of(modelDir).toAbsolutePath().normalize() + "|" + toOptions().dtype() + "|" + toOptions().device();
    }
}

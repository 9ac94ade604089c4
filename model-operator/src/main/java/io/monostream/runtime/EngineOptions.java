package io.monostream.runtime;

import io.monostream.vision.ImageLimits;

import java.nio.file.Path;
import java.util.Objects;

/**
 * How an {@link Engine} is opened. Defaults run on a laptop: FP32 on the CPU.
 *
 * <pre>{@code
 * EngineOptions o = EngineOptions.builder(Path.of("models/Mono-InternVL-2B")).dtype("bf16").build();
 * }</pre>
 *
 * @param dtype "f32" or "bf16" ("f16" is refused: this model overflows to NaN)
 * @param device "cpu", "cuda" or "cuda:N"
 * @param threads intra-op threads for tensor maths; 0 = libtorch's default
 * @param queueCapacity requests admitted but not yet finished; beyond it submit fails with OVERLOADED
 * @param maxBatch sequences decoded together (continuous batching)
 * @param kvCacheBytes KV cache memory the engine may reserve; a request reserves prompt plus
 *     max_new_tokens at admission, and one that can never fit is refused
 * @param maxPrefillTokens prompt tokens one prefill pass runs through the decoder (and the image
 *     tiles those tokens need through the patch embedding): requests are admitted together only
 *     while their prompts fit, a longer prompt is prefilled in chunks of this size with a decode
 *     step of the running sequences between two, short prompts that arrive meanwhile join its
 *     passes within half of each and long ones join behind it; a prefill's working memory is
 *     bounded by it, not by the prompts in the queue
 */
public record EngineOptions(
        Path modelDir,
        String dtype,
        String device,
        int threads,
        ImageLimits imageLimits,
        int queueCapacity,
        int maxBatch,
        long kvCacheBytes,
        int maxPrefillTokens) {

    public static final long DEFAULT_KV_CACHE_BYTES = 2L << 30;
    public static final int DEFAULT_MAX_PREFILL_TOKENS = 2048;

    public EngineOptions {
        Objects.requireNonNull(modelDir, "modelDir");
        Objects.requireNonNull(imageLimits, "imageLimits");
        dtype = dtype == null ? "f32" : dtype.toLowerCase(java.util.Locale.ROOT);
        device = device == null ? "cpu" : device.toLowerCase(java.util.Locale.ROOT);
        if (queueCapacity < 1 || maxBatch < 1 || threads < 0 || kvCacheBytes < 1 || maxPrefillTokens < 1) {
            throw new IllegalArgumentException("queueCapacity, maxBatch, kvCacheBytes and maxPrefillTokens must be >= 1 and threads >= 0");
        }
    }

    public static Builder builder(Path modelDir) {
        return new Builder(modelDir);
    }

    public static final class Builder {
        private final Path modelDir;
        private String dtype = "f32";
        private String device = "cpu";
        private int threads;
        private ImageLimits imageLimits = ImageLimits.defaults();
        private int queueCapacity = 64;
        private int maxBatch = 8;
        private long kvCacheBytes = DEFAULT_KV_CACHE_BYTES;
        private int maxPrefillTokens = DEFAULT_MAX_PREFILL_TOKENS;

        private Builder(Path modelDir) {
            this.modelDir = modelDir;
        }

        public Builder dtype(String v) { this.dtype = v; return this; }
        public Builder device(String v) { this.device = v; return this; }
        public Builder threads(int v) { this.threads = v; return this; }
        public Builder imageLimits(ImageLimits v) { this.imageLimits = v; return this; }
        public Builder queueCapacity(int v) { this.queueCapacity = v; return this; }
        public Builder maxBatch(int v) { this.maxBatch = v; return this; }
        public Builder kvCacheBytes(long v) { this.kvCacheBytes = v; return this; }
        public Builder maxPrefillTokens(int v) { this.maxPrefillTokens = v; return this; }

        public EngineOptions build() {
            return new EngineOptions(modelDir, dtype, device, threads, imageLimits, queueCapacity, maxBatch, kvCacheBytes, maxPrefillTokens);
        }
    }
}

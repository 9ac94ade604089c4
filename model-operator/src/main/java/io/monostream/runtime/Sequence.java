package io.monostream.runtime;

import io.monostream.model.KvCache;

import java.time.Instant;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;

/** One request on its way through the scheduler: its prompt, cache, sampler and tokens so far. */
final class Sequence {
    final Generator.Prepared prepared;
    final CompletableFuture<GenerationResult> future;
    final long submittedNanos;
    final Sampler sampler;
    final int[] generated;
    KvCache cache;
    int count;
    float[] firstLogits;
    /** The token sampled last and not yet fed to the model. */
    int pending = -1;
    String stopReason;
    /** When the first prefill pass that runs part of its prompt began; 0 until then (the queue's wait ends there). */
    long prefillStartNanos;
    long prefillNanos;
    long decodeStartNanos;

    Sequence(Generator.Prepared prepared, CompletableFuture<GenerationResult> future, long submittedNanos) {
        this.prepared = prepared;
        this.future = future;
        this.submittedNanos = submittedNanos;
        this.sampler = new Sampler(prepared.request().sampling());
        this.generated = new int[prepared.request().maxNewTokens()];
    }

    GenerationRequest request() {
        return prepared.request();
    }

    /** Prompt plus every token it may generate: the cache capacity reserved at admission. */
    int capacity() {
        return prepared.inputIds().length + request().maxNewTokens();
    }

    boolean expired(Instant now) {
        Instant deadline = request().deadline();
        return deadline != null && now.isAfter(deadline);
    }

    int[] generatedIds() {
        return Arrays.copyOf(generated, count);
    }

    void closeCache() {
        if (cache != null) {
            cache.close();
            cache = null;
        }
    }
}

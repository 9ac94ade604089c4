package io.monostream.runtime;

import io.monostream.prompt.Task;

import java.time.Instant;
import java.util.Objects;

/**
 * One generation: an optional encoded image, a task and/or an explicit question, limits.
 *
 * <pre>{@code
 * GenerationRequest r = GenerationRequest.builder("evt-1").image(bytes).task(Task.OCR).maxNewTokens(256).build();
 * }</pre>
 *
 * @param question the user question; when null the task's default question is used
 * @param maxTiles 0 means the checkpoint's default (max_dynamic_patch)
 * @param deadline null means no deadline
 * @param ignoreStopTokens generate exactly max_new_tokens (benchmarks), as vLLM's ignore_eos
 */
public record GenerationRequest(
        String requestId,
        byte[] image,
        Task task,
        String question,
        int maxNewTokens,
        int maxTiles,
        SamplingParams sampling,
        Instant deadline,
        boolean ignoreStopTokens) {

    public static final int DEFAULT_MAX_NEW_TOKENS = 128;

    public GenerationRequest {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(sampling, "sampling");
        if (task == null && question == null) {
            throw new IllegalArgumentException("a request needs a task or a question");
        }
        if (maxNewTokens < 1) {
            throw new IllegalArgumentException("max_new_tokens must be >= 1, got " + maxNewTokens);
        }
        if (maxTiles < 0) {
            throw new IllegalArgumentException("max_tiles must be >= 0, got " + maxTiles);
        }
    }

    /** The question actually asked: the explicit one, else the task's default. */
    public String effectiveQuestion() {
        return question != null ? question : task.defaultQuestion();
    }

    public static Builder builder(String requestId) {
        return new Builder(requestId);
    }

    /** Builder with the defaults: greedy, {@value #DEFAULT_MAX_NEW_TOKENS} new tokens, checkpoint tiling. */
    public static final class Builder {
        private final String requestId;
        private byte[] image;
        private Task task;
        private String question;
        private int maxNewTokens = DEFAULT_MAX_NEW_TOKENS;
        private int maxTiles;
        private SamplingParams sampling = SamplingParams.greedy();
        private Instant deadline;
        private boolean ignoreStopTokens;

        private Builder(String requestId) {
            this.requestId = requestId;
        }

        public Builder image(byte[] encoded) { this.image = encoded; return this; }
        public Builder task(Task task) { this.task = task; return this; }
        public Builder question(String question) { this.question = question; return this; }
        public Builder maxNewTokens(int n) { this.maxNewTokens = n; return this; }
        public Builder maxTiles(int n) { this.maxTiles = n; return this; }
        public Builder sampling(SamplingParams s) { this.sampling = s; return this; }
        public Builder deadline(Instant d) { this.deadline = d; return this; }
        public Builder ignoreStopTokens(boolean v) { this.ignoreStopTokens = v; return this; }

        public GenerationRequest build() {
            return new GenerationRequest(requestId, image, task, question, maxNewTokens, maxTiles, sampling, deadline,
                    ignoreStopTokens);
        }
    }
}

package io.monostream.runtime;

import io.monostream.prompt.Task;

/**
 * The outcome of one request: the text and everything needed to see where the time went.
 *
 * @param task the request's task, or null for a free question
 * @param question the question as asked (the prompt's user text, without the image block)
 * @param inputIds the whole prompt
 * @param firstLogits full-vocabulary logits at the first generated position (fp32)
 * @param generatedIds every generated token, including the stop token when one ended generation (as HF generate)
 * @param stopReason "stop_token" or "max_new_tokens"
 */
public record GenerationResult(
        String requestId,
        String modelName,
        Task task,
        String question,
        String text,
        int[] inputIds,
        int[] generatedIds,
        int imageTiles,
        float[] firstLogits,
        String stopReason,
        Timings timings) {

    public int promptTokens() {
        return inputIds.length;
    }

    public int generatedTokens() {
        return generatedIds.length;
    }
}

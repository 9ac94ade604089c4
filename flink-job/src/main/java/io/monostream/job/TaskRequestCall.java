package io.monostream.job;

import io.monostream.flink.ModelCallAdapter;
import io.monostream.prompt.Task;
import io.monostream.runtime.EngineException;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.Timings;
import io.monostream.schema.ReasonCode;
import io.monostream.vision.ImageRejectedException;

import org.apache.flink.configuration.Configuration;

import java.time.Duration;
import java.time.Instant;

/**
 * {@link TaskRequest} ↔ engine: greedy decoding (a replay writes the same text), a deadline, and
 * failures to reason codes through {@link ReasonCodes}.
 */
public final class TaskRequestCall implements ModelCallAdapter<TaskRequest, Outcome> {
    private static final long serialVersionUID = 1L;

    private final Duration deadline;
    private final int maxTiles;

    /**
     * @param deadline the engine drops a request this long after submission (the async timeout)
     * @param maxTiles most tiles per image; 0 = the checkpoint's default
     */
    public TaskRequestCall(Duration deadline, int maxTiles) {
        this.deadline = deadline;
        this.maxTiles = maxTiles;
    }

    public static TaskRequestCall from(Configuration conf) {
        return new TaskRequestCall(conf.get(MonostreamOptions.ASYNC_TIMEOUT), conf.get(MonostreamOptions.MAX_TILES));
    }

    /** The engine request for a task request; tests and benchmarks build the same one to compare. */
    public static GenerationRequest.Builder requestFor(String requestId, byte[] image, String task, String prompt,
                                                       int maxNewTokens, int maxTiles) {
        return GenerationRequest.builder(requestId)
                .image(image)
                .task(Task.valueOf(task))
                .question(prompt)
                .maxNewTokens(maxNewTokens)
                .maxTiles(maxTiles);
    }

    @Override
    public GenerationRequest request(TaskRequest in) {
        return requestFor(in.origin.id + "/" + in.task, in.image, in.task, in.prompt, in.maxNewTokens, maxTiles)
                .deadline(Instant.now().plus(deadline))
                .build();
    }

    @Override
    public Outcome result(TaskRequest in, GenerationResult r) {
        Answer a = new Answer();
        a.text = r.text();
        a.model = r.modelName();
        a.prompt = r.question();
        a.promptTokens = r.promptTokens();
        a.generatedTokens = r.generatedTokens();
        a.imageTiles = r.imageTiles();
        Timings t = r.timings();
        if (t != null) {
            a.queueMs = t.queueNanos() / 1e6;
            a.preprocessMs = t.preprocessNanos() / 1e6;
            a.prefillMs = t.prefillNanos() / 1e6;
            a.decodeMs = t.decodeNanos() / 1e6;
        }
        return Outcome.answered(in.origin, in.task, a);
    }

    @Override
    public Outcome failure(TaskRequest in, Throwable cause) {
        Outcome o = Outcome.failed(in.origin, in.task, Failure.of(ReasonCodes.of(cause), "model",
                cause instanceof EngineException || cause instanceof ImageRejectedException ? cause.getMessage() : String.valueOf(cause)));
        o.retryable = cause instanceof EngineException e && e.transientFailure();
        return o;
    }

    @Override
    public Outcome timeout(TaskRequest in) {
        return Outcome.failed(in.origin, in.task,
                Failure.of(ReasonCode.MODEL_TIMEOUT, "model", "no answer within " + deadline));
    }
}

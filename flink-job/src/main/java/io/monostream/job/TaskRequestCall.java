package io.monostream.job;

import io.monostream.flink.ModelCallAdapter;
import io.monostream.prompt.Task;
import io.monostream.runtime.EngineException;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.Timings;
import io.monostream.vision.ImageRejectedException;

import java.time.Duration;
import java.time.Instant;

/** {@link TaskRequest} ↔ engine: greedy decoding (a replay writes the same text), a deadline, failures to reason codes. */
public final class TaskRequestCall implements ModelCallAdapter<TaskRequest, Outcome> {
    private static final long serialVersionUID = 1L;

    private final Duration deadline;

    /** @param deadline the engine drops a request this long after submission (the async timeout) */
    public TaskRequestCall(Duration deadline) {
        this.deadline = deadline;
    }

    @Override
    public GenerationRequest request(TaskRequest in) {
        return GenerationRequest.builder(in.origin.id + "/" + in.task)
                .image(in.image)
                .task(Task.valueOf(in.task))
                .question(in.prompt)
                .maxNewTokens(in.maxNewTokens)
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
        String reason;
        boolean retryable = false;
        if (cause instanceof ImageRejectedException e) {
            reason = e.reason().name();
        } else if (cause instanceof EngineException e) {
            reason = switch (e.reason()) {
                case INVALID_REQUEST -> "INVALID_REQUEST";
                case MODEL_TIMEOUT -> "MODEL_TIMEOUT";
                default -> "MODEL_ERROR";
            };
            retryable = e.transientFailure();
        } else if (cause instanceof IllegalArgumentException) {
            reason = "INVALID_REQUEST";
        } else {
            reason = "MODEL_ERROR";
        }
        Outcome o = Outcome.failed(in.origin, in.task, Failure.of(reason, "model", String.valueOf(cause)));
        o.retryable = retryable;
        return o;
    }

    @Override
    public Outcome timeout(TaskRequest in) {
        return Outcome.failed(in.origin, in.task,
                Failure.of("MODEL_TIMEOUT", "model", "no answer within " + deadline));
    }
}

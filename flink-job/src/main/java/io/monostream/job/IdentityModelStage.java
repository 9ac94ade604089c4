package io.monostream.job;

import org.apache.flink.streaming.api.functions.async.AsyncFunction;
import org.apache.flink.streaming.api.functions.async.ResultFuture;

import java.util.Collections;

/**
 * The model stage replaced by an immediate empty answer: what {@code bench-pipeline} runs to
 * measure the pipeline's own ceiling (Kafka, Avro, resolve, routing, exactly-once sinks).
 */
public final class IdentityModelStage implements AsyncFunction<TaskRequest, Outcome> {
    private static final long serialVersionUID = 1L;

    @Override
    public void asyncInvoke(TaskRequest in, ResultFuture<Outcome> resultFuture) {
        Answer a = new Answer();
        a.text = "";
        a.model = "identity";
        a.prompt = in.prompt == null ? "" : in.prompt;
        resultFuture.complete(Collections.singletonList(Outcome.answered(in.origin, in.task, a)));
    }
}

package io.monostream.job;

import io.monostream.job.resolve.ImageCheck;
import io.monostream.schema.ReasonCode;
import io.monostream.vision.ImageLimits;
import io.monostream.vision.ImageRejectedException;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

import java.util.LinkedHashSet;
import java.util.Set;

/**
 * Check and fan out, after {@link FetchStage} has turned any URI into bytes: the request's own
 * checks, the image limits from the header, then one {@link TaskRequest} per requested task. Anything refused goes to {@link #FAILURES}
 * as a dead-letter {@link Outcome}: for the whole event when the event or its image is bad, per
 * task when only a task is bad.
 */
public class ResolveStage extends ProcessFunction<InboundEvent, TaskRequest> {
    private static final long serialVersionUID = 1L;

    public static final OutputTag<Outcome> FAILURES = new OutputTag<>("failures") {};

    private static final Set<String> MODEL_TASKS = Set.of("CAPTION", "DETAILED_CAPTION", "OCR");

    private final ResolveSettings settings;

    private transient ImageCheck check;
    private transient Counter requestsOut;

    public ResolveStage(ResolveSettings settings) {
        this.settings = settings;
    }

    @Override
    public void open(OpenContext ctx) {
        check = new ImageCheck(new ImageLimits(settings.maxBytes(), settings.maxPixels()));
        requestsOut = getRuntimeContext().getMetricGroup().counter("taskRequestsOut");
    }

    @Override
    public void processElement(InboundEvent in, Context ctx, Collector<TaskRequest> out) {
        if (in.failure != null) {
            ctx.output(FAILURES, Outcome.failed(in.origin, null, in.failure));
            return;
        }
        // Request checks first: they are cheap and need no I/O.
        if (in.tasks.isEmpty()) {
            ctx.output(FAILURES, Outcome.failed(in.origin, null, Failure.of(ReasonCode.INVALID_REQUEST, "request", "no tasks")));
            return;
        }
        int maxNewTokens = in.maxNewTokens == null ? settings.defaultMaxNewTokens() : in.maxNewTokens;
        if (maxNewTokens < 1 || maxNewTokens > settings.maxNewTokensLimit()) {
            ctx.output(FAILURES, Outcome.failed(in.origin, null, Failure.of(ReasonCode.INVALID_REQUEST, "request",
                    "max_new_tokens " + maxNewTokens + " outside [1, " + settings.maxNewTokensLimit() + "]")));
            return;
        }
        if (in.uri != null) { // FetchStage replaces every URI with bytes or a failure before this stage
            ctx.output(FAILURES, Outcome.failed(in.origin, null,
                    Failure.of(ReasonCode.FETCH_FAILED, "resolve", "the image at " + in.uri + " was not fetched")));
            return;
        }
        byte[] image = in.image;
        try {
            check.check(image);
        } catch (ImageRejectedException e) {
            ctx.output(FAILURES, Outcome.failed(in.origin, null,
                    Failure.of(ReasonCodes.of(e.reason()), "resolve", e.getMessage())));
            return;
        }
        // One request per distinct task; a task this job cannot run fails alone.
        for (String task : new LinkedHashSet<>(in.tasks)) {
            if (!MODEL_TASKS.contains(task)) {
                ctx.output(FAILURES, Outcome.failed(in.origin, task,
                        Failure.of(ReasonCode.INVALID_REQUEST, "request", "unknown task " + task)));
                continue;
            }
            TaskRequest r = new TaskRequest();
            r.origin = in.origin;
            r.task = task;
            r.image = image;
            r.prompt = in.prompt;
            r.maxNewTokens = maxNewTokens;
            requestsOut.inc();
            out.collect(r);
        }
    }
}

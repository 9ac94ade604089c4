package io.monostream.job;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.metrics.Counter;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

import java.util.HashMap;
import java.util.Map;

/**
 * Routes outcomes to their topics: captions on the main output, OCR and dead letters on side
 * outputs. Counts results per task and dead letters per reason (Flink metrics).
 */
public class RouteOutcomes extends ProcessFunction<Outcome, Outcome> {
    private static final long serialVersionUID = 1L;

    public static final OutputTag<Outcome> OCR = new OutputTag<>("ocr") {};
    public static final OutputTag<Outcome> DEAD_LETTERS = new OutputTag<>("dead-letters") {};

    private transient Map<String, Counter> results;
    private transient Map<String, Counter> deadLetters;
    private transient MetricGroup group;

    @Override
    public void open(OpenContext ctx) {
        group = getRuntimeContext().getMetricGroup();
        results = new HashMap<>();
        deadLetters = new HashMap<>();
    }

    @Override
    public void processElement(Outcome o, Context ctx, Collector<Outcome> out) {
        if (o.isDeadLetter()) {
            deadLetters.computeIfAbsent(o.failure.reason,
                    r -> group.addGroup("deadLetters").addGroup("reason", r).counter("count")).inc();
            ctx.output(DEAD_LETTERS, o);
            return;
        }
        results.computeIfAbsent(o.task, t -> group.addGroup("results").addGroup("task", t).counter("count")).inc();
        if ("OCR".equals(o.task)) {
            ctx.output(OCR, o);
        } else {
            out.collect(o);
        }
    }
}

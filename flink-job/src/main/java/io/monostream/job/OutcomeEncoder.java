package io.monostream.job;

import io.monostream.schema.CaptionResult;
import io.monostream.schema.DeadLetter;
import io.monostream.schema.OcrResult;
import io.monostream.schema.ReasonCode;
import io.monostream.schema.Task;
import io.monostream.schema.Timings;
import io.monostream.schema.WireFormat;

import org.apache.flink.api.common.serialization.SerializationSchema;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.HashMap;

/** An {@link Outcome} as the Avro record of its topic, in single-object encoding. */
public final class OutcomeEncoder implements SerializationSchema<Outcome> {
    private static final long serialVersionUID = 1L;

    /** Which record a topic holds. */
    public enum Kind { CAPTION, OCR, DEAD_LETTER }

    private final Kind kind;
    private transient WireFormat<CaptionResult> captions;
    private transient WireFormat<OcrResult> ocr;
    private transient WireFormat<DeadLetter> deadLetters;

    public OutcomeEncoder(Kind kind) {
        this.kind = kind;
    }

    @Override
    public void open(InitializationContext context) {
        init();
    }

    private void init() {
        captions = WireFormat.of(CaptionResult.class);
        ocr = WireFormat.of(OcrResult.class);
        deadLetters = WireFormat.of(DeadLetter.class);
    }

    @Override
    public byte[] serialize(Outcome o) {
        if (captions == null) {
            init();
        }
        return switch (kind) {
            case CAPTION -> captions.encode(caption(o));
            case OCR -> ocr.encode(ocr(o));
            case DEAD_LETTER -> deadLetters.encode(deadLetter(o));
        };
    }

    static CaptionResult caption(Outcome o) {
        Answer a = o.answer;
        return CaptionResult.newBuilder().setId(o.origin.id).setTask(Task.valueOf(o.task)).setText(a.text)
                .setModel(a.model).setPrompt(a.prompt).setPromptTokens(a.promptTokens)
                .setGeneratedTokens(a.generatedTokens).setImageTiles(a.imageTiles).setTimings(timings(a))
                .setAttributes(new HashMap<>(o.origin.attributes))
                .setEventTime(Instant.ofEpochMilli(o.origin.eventTime)).build();
    }

    static OcrResult ocr(Outcome o) {
        Answer a = o.answer;
        return OcrResult.newBuilder().setId(o.origin.id).setTask(Task.valueOf(o.task)).setText(a.text)
                .setModel(a.model).setPrompt(a.prompt).setPromptTokens(a.promptTokens)
                .setGeneratedTokens(a.generatedTokens).setImageTiles(a.imageTiles).setTimings(timings(a))
                .setAttributes(new HashMap<>(o.origin.attributes))
                .setEventTime(Instant.ofEpochMilli(o.origin.eventTime)).build();
    }

    static DeadLetter deadLetter(Outcome o) {
        ReasonCode reason;
        try {
            reason = ReasonCode.valueOf(o.failure.reason);
        } catch (IllegalArgumentException e) {
            reason = ReasonCode.UNKNOWN;
        }
        Task task = null;
        if (o.task != null) {
            try {
                task = Task.valueOf(o.task);
            } catch (IllegalArgumentException e) {
                task = Task.UNKNOWN;
            }
        }
        return DeadLetter.newBuilder().setReason(reason).setMessage(o.failure.message).setStage(o.failure.stage)
                .setId(o.origin.id).setTask(task)
                .setOriginal(ByteBuffer.wrap(o.origin.original == null ? new byte[0] : o.origin.original))
                .setSourceTopic(o.origin.topic == null ? "" : o.origin.topic)
                .setSourcePartition(o.origin.partition).setSourceOffset(o.origin.offset)
                .setAttributes(new HashMap<>(o.origin.attributes))
                .setTime(Instant.now()).build();
    }

    private static Timings timings(Answer a) {
        return new Timings(a.queueMs, a.preprocessMs, a.prefillMs, a.decodeMs);
    }
}

package io.monostream.local;

import io.monostream.schema.CaptionResult;
import io.monostream.schema.DeadLetter;
import io.monostream.schema.ImageEvent;
import io.monostream.schema.InlineImage;
import io.monostream.schema.OcrResult;
import io.monostream.schema.Timings;
import io.monostream.schema.WireFormat;
import io.monostream.schema.WireFormatException;

import org.apache.avro.specific.SpecificRecord;

import java.util.List;

/**
 * Any record of the job's topics, decoded by the schema fingerprint in its single-object header,
 * and printed as one readable line (for {@code demo} and {@code tail}).
 */
public final class OutputRecord {
    private static final List<WireFormat<? extends SpecificRecord>> FORMATS = List.of(
            WireFormat.of(CaptionResult.class), WireFormat.of(OcrResult.class),
            WireFormat.of(DeadLetter.class), WireFormat.of(ImageEvent.class));

    private OutputRecord() {}

    /** The record, or a WireFormatException when no known schema wrote these bytes. */
    public static SpecificRecord decode(byte[] bytes) {
        WireFormatException last = null;
        for (WireFormat<? extends SpecificRecord> f : FORMATS) {
            try {
                return f.decode(bytes);
            } catch (WireFormatException e) {
                last = e;
            }
        }
        throw last;
    }

    /** One line, e.g. {@code caption  receipt  CAPTION  "…"  (queue 0.3 ms, prefill 41 ms, decode 12 ms, 306+16 tokens)}. */
    public static String format(SpecificRecord r) {
        return switch (r) {
            case CaptionResult c -> String.format("result    %-10s %-16s %s  (%s, %d tiles, %d+%d tokens, model %s)", c.getId(),
                    c.getTask(), quoted(c.getText()), timings(c.getTimings()), c.getImageTiles(), c.getPromptTokens(),
                    c.getGeneratedTokens(), c.getModel());
            case OcrResult o -> String.format("result    %-10s %-16s %s  (%s, %d tiles, %d+%d tokens, model %s)", o.getId(),
                    o.getTask(), quoted(o.getText()), timings(o.getTimings()), o.getImageTiles(), o.getPromptTokens(),
                    o.getGeneratedTokens(), o.getModel());
            case DeadLetter d -> String.format("dead      %-10s %-16s %s at %s: %s  (from %s[%d]@%d, %d original bytes)",
                    d.getId() == null ? "(no id)" : d.getId(), d.getTask() == null ? "(event)" : d.getTask(), d.getReason(),
                    d.getStage(), d.getMessage(), d.getSourceTopic(), d.getSourcePartition(), d.getSourceOffset(),
                    d.getOriginal().remaining());
            case ImageEvent e -> String.format("event     %-10s %-16s %s", e.getId(), e.getTasks(),
                    e.getImage() instanceof InlineImage i ? i.getData().remaining() + " bytes inline" : String.valueOf(e.getImage()));
            default -> r.toString();
        };
    }

    private static String timings(Timings t) {
        return String.format("queue %.1f ms, preprocess %.1f ms, prefill %.1f ms, decode %.1f ms",
                t.getQueueMs(), t.getPreprocessMs(), t.getPrefillMs(), t.getDecodeMs());
    }

    /** Quoted, with control and unprintable characters escaped (a random-weight model writes anything). */
    static String quoted(CharSequence text) {
        StringBuilder sb = new StringBuilder("\"");
        text.codePoints().forEach(cp -> {
            if (cp == '"' || cp == '\\') {
                sb.append('\\').appendCodePoint(cp);
            } else if (cp == '\n') {
                sb.append("\\n");
            } else if (Character.isISOControl(cp) || cp == 0xFFFD || !Character.isDefined(cp)) {
                sb.append(String.format("\\u%04x", cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        return sb.append('"').toString();
    }
}

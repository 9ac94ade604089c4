package io.monostream.cli;

import io.monostream.schema.ImageEvent;
import io.monostream.schema.ImageReference;
import io.monostream.schema.InlineImage;
import io.monostream.schema.Task;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** ImageEvents as the commands produce them: inline bytes or a {@code file:} reference. */
final class ImageEvents {
    private ImageEvents() {}

    static ImageEvent inline(String id, byte[] image, List<Task> tasks, Map<String, String> attributes) {
        return base(id, tasks, attributes).setImage(InlineImage.newBuilder().setData(ByteBuffer.wrap(image)).build()).build();
    }

    static ImageEvent byReference(String id, String uri, List<Task> tasks, Map<String, String> attributes) {
        return base(id, tasks, attributes).setImage(ImageReference.newBuilder().setUri(uri).build()).build();
    }

    private static ImageEvent.Builder base(String id, List<Task> tasks, Map<String, String> attributes) {
        return ImageEvent.newBuilder().setId(id).setContentType(null).setTasks(tasks).setPrompt(null)
                .setMaxNewTokens(null).setAttributes(new HashMap<>(attributes)).setEventTime(Instant.now());
    }

    /** "CAPTION,OCR" → tasks; unknown names are a usage error. */
    static List<Task> parseTasks(String csv) {
        try {
            return java.util.Arrays.stream(csv.split(",")).map(String::trim).filter(s -> !s.isEmpty())
                    .map(s -> Task.valueOf(s.toUpperCase(java.util.Locale.ROOT))).toList();
        } catch (IllegalArgumentException e) {
            throw new UsageException("--tasks takes CAPTION, DETAILED_CAPTION and OCR, comma-separated; got '" + csv + "'");
        }
    }
}

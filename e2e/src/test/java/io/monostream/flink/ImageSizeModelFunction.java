package io.monostream.flink;

import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.Timings;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.util.concurrent.CompletableFuture;

/**
 * The model stage with the engine replaced by a deterministic function of the request (the task
 * and the decoded image's size), through the package-private {@code connect} seam. It pins the
 * pipeline's own guarantees (routing, exactly-once, recovery) independently of the model; the
 * tests that compare text against the real engine use {@link ModelAsyncFunction} itself.
 */
public class ImageSizeModelFunction<IN, OUT> extends ModelAsyncFunction<IN, OUT> {
    public ImageSizeModelFunction(EngineSpec spec, ModelCallAdapter<IN, OUT> adapter) {
        super(spec, adapter);
    }

    /** The text the stand-in writes for an image and task. */
    public static String expectedText(byte[] image, String task) {
        try {
            BufferedImage img = ImageIO.read(new ByteArrayInputStream(image));
            return task + " " + img.getWidth() + "x" + img.getHeight();
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    ModelClient connect(EngineSpec spec) {
        return new ModelClient() {
            @Override
            public CompletableFuture<GenerationResult> submit(GenerationRequest r) {
                return CompletableFuture.supplyAsync(() -> new GenerationResult(r.requestId(), modelName(), r.task(),
                        r.effectiveQuestion(), expectedText(r.image(), r.task().name()), new int[] {1, 2, 3},
                        new int[] {4}, 1, new float[0], "stop_token", new Timings(1_000_000, 0, 2_000_000, 3_000_000)));
            }

            @Override
            public String modelName() {
                return "image-size";
            }

            @Override
            public void close() {}
        };
    }
}

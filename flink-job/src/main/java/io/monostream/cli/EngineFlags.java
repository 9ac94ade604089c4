package io.monostream.cli;

import io.monostream.runtime.EngineOptions;
import io.monostream.vision.ImageLimits;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;

/** The flags every model command shares, and how they become {@link EngineOptions}. */
final class EngineFlags {
    static final Set<String> VALUED = Set.of("model", "dtype", "device", "threads", "max-image-bytes", "max-pixels");

    static final String HELP = """
              --model DIR            checkpoint directory in the Hugging Face layout (config.json, safetensors, tokenizer.model)
              --dtype f32|bf16       compute dtype (default f32; f16 is refused: the model overflows)
              --device cpu|cuda[:N]  device (default cpu)
              --threads N            intra-op threads (default: libtorch's)
              --max-image-bytes N    largest encoded image accepted (default %d)
              --max-pixels N         largest width*height accepted, read from the header (default %d)
            """.formatted(ImageLimits.DEFAULT_MAX_ENCODED_BYTES, ImageLimits.DEFAULT_MAX_PIXELS);

    private EngineFlags() {}

    static EngineOptions options(Flags flags) {
        Path model = flags.existingPath("model");
        if (!Files.isDirectory(model)) {
            throw new UsageException("--model " + model + " is not a directory");
        }
        ImageLimits limits = new ImageLimits(
                flags.getLong("max-image-bytes", ImageLimits.DEFAULT_MAX_ENCODED_BYTES),
                flags.getLong("max-pixels", ImageLimits.DEFAULT_MAX_PIXELS));
        return EngineOptions.builder(model)
                .dtype(flags.get("dtype", "f32"))
                .device(flags.get("device", "cpu"))
                .threads(flags.getInt("threads", 0))
                .imageLimits(limits)
                .build();
    }
}

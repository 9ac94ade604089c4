package io.monostream.cli;

import io.monostream.job.MonostreamOptions;
import org.apache.flink.configuration.Configuration;

/** {@code --dtype}, {@code --device} and {@code --threads} of the commands that run the job in-process. */
final class EngineChoice {
    private EngineChoice() {}

    static void apply(Flags flags, Configuration conf) {
        if (flags.has("dtype")) {
            conf.setString(MonostreamOptions.MODEL_DTYPE.key(), flags.get("dtype", "f32"));
        }
        if (flags.has("device")) {
            conf.setString(MonostreamOptions.MODEL_DEVICE.key(), flags.get("device", "cpu"));
        }
        if (flags.has("threads")) {
            conf.setString(MonostreamOptions.MODEL_THREADS.key(), String.valueOf(flags.getInt("threads", 0)));
        }
    }
}

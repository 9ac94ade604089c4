package io.monostream.cli;

import io.monostream.checkpoint.RandomCheckpoint;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Set;

/** {@code random-checkpoint}: writes a random-weight checkpoint of a given shape, for load and memory tests. */
final class RandomCheckpointCommand {
    private RandomCheckpointCommand() {}

    static int run(String[] args) throws IOException {
        Flags flags = Flags.parse("random-checkpoint", args, Set.of("out", "shape", "seed"), Set.of("help"));
        if (flags.has("help")) {
            System.out.println("usage: random-checkpoint --out DIR [--shape 2b|mid] [--seed N]\n"
                    + "  2b: the Mono-InternVL-2B shape (3.1 B parameters, ~6.2 GB BF16); mid: the bench's mid-size shape");
            return 0;
        }
        RandomCheckpoint.Shape shape = switch (flags.get("shape", "2b")) {
            case "2b" -> RandomCheckpoint.Shape.monoInternVl2B();
            case "mid" -> RandomCheckpoint.Shape.midSize();
            default -> throw new UsageException("random-checkpoint: --shape must be 2b or mid");
        };
        Path out = Path.of(flags.required("out"));
        long start = System.nanoTime();
        long bytes = RandomCheckpoint.write(out, shape, flags.getInt("seed", 1));
        System.out.printf("wrote %s: %d MB of BF16 weights in %.1f s%n", out, bytes >> 20, (System.nanoTime() - start) / 1e9);
        return 0;
    }
}

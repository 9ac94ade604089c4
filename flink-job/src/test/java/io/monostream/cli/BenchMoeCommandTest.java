package io.monostream.cli;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pins {@code bench-moe} on a tiny config: one row per visual fraction, positive timings, both ways agreeing. */
class BenchMoeCommandTest {

    @Test
    void printsOneRowPerVisualFractionWithMatchingOutputs() {
        assertRowsAgree(run("f32"), "FP32", 1e-4);
    }

    /**
     * In BF16 both ways run the same prepacked products over the same rows, so they differ only by
     * the rounding of outputs of magnitude ~1: a few BF16 ulps (2^-8 each).
     */
    @Test
    void runsInBf16WhenAsked() {
        assertRowsAgree(run("bf16"), "BF16", 4 * Math.pow(2, -8));
    }

    private static CommandRun run(String dtype) {
        return CommandRun.of("bench-moe", "--hidden", "32", "--intermediate", "64", "--tokens", "16",
                "--iterations", "1", "--threads", "1", "--dtype", dtype);
    }

    private static void assertRowsAgree(CommandRun run, String dtype, double tolerance) {
        assertEquals(0, run.exitCode(), run::toString);
        List<String> lines = run.stdout().lines().toList();
        assertTrue(lines.getFirst().contains(dtype + " CPU: hidden 32, intermediate 64, 16 tokens"), lines.getFirst());
        List<String> rows = lines.stream().filter(l -> l.matches("^\\d+%.*")).toList();
        assertEquals(List.of("0%", "25%", "50%", "100%"), rows.stream().map(r -> r.split("\\s+")[0]).toList(), run::toString);
        for (String row : rows) {
            String[] cols = row.trim().split("\\s+");
            double partitioned = Double.parseDouble(cols[1]);
            double masked = Double.parseDouble(cols[2]);
            double ratio = Double.parseDouble(cols[3]);
            double maxDiff = Double.parseDouble(cols[4]);
            assertTrue(partitioned > 0 && masked > 0, row);
            assertEquals(partitioned / masked, ratio, 0.01 + ratio * 0.01, row);
            assertTrue(maxDiff <= tolerance, "partitioned and masked MoE differ: " + row);
        }
    }
}

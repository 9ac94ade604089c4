package io.monostream.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pins {@code COMMAND --help}: exit 0, the command's flags listed on stdout, and every listed flag accepted. */
class HelpTest {
    private static final List<String> MODEL_FLAGS = List.of("--model", "--dtype", "--device", "--threads",
            "--max-image-bytes", "--max-pixels");
    private static final List<String> GENERATE_FLAGS = concat(MODEL_FLAGS,
            List.of("--image", "--question", "--max-new-tokens", "--max-tiles"));

    static Stream<Arguments> commands() {
        return Stream.of(
                Arguments.of("caption", GENERATE_FLAGS),
                Arguments.of("detailed-caption", GENERATE_FLAGS),
                Arguments.of("ocr", GENERATE_FLAGS),
                Arguments.of("inspect", concat(GENERATE_FLAGS, List.of("--dump-tiles"))),
                Arguments.of("bench-moe", List.of("--hidden", "--intermediate", "--tokens", "--iterations", "--threads", "--device", "--dtype")));
    }

    @ParameterizedTest(name = "{0} --help")
    @MethodSource("commands")
    void helpExitsZeroAndListsEveryFlag(String command, List<String> flags) {
        CommandRun run = CommandRun.of(command, "--help");

        assertEquals(0, run.exitCode(), run::toString);
        assertEquals("", run.stderr());
        for (String flag : flags) {
            assertTrue(Pattern.compile(Pattern.quote(flag) + "\\b(?!-)").matcher(run.stdout()).find(),
                    () -> command + " --help does not list " + flag + ":\n" + run.stdout());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("commands")
    void everyFlagTheHelpListsIsAccepted(String command, List<String> ignored) {
        String help = CommandRun.of(command, "--help").stdout();
        TreeSet<String> listed = new TreeSet<>();
        Matcher m = Pattern.compile("--[a-z][a-z-]*").matcher(help);
        while (m.find()) {
            listed.add(m.group());
        }
        listed.remove("--help");
        assertTrue(listed.size() >= 5, "too few flags found in: " + help);
        for (String flag : listed) {
            // a valued flag consumes "1"; then --help answers before anything is loaded
            CommandRun run = CommandRun.of(command, flag, "1", "--help");
            assertEquals(0, run.exitCode(), () -> command + " " + flag + " is listed but refused: " + run);
        }
    }

    @Test
    void topLevelHelpListsTheModelCommands() {
        CommandRun run = CommandRun.of("--help");

        assertEquals(0, run.exitCode());
        for (String command : List.of("caption", "detailed-caption", "ocr", "inspect", "bench-moe")) {
            assertTrue(run.stdout().contains("  " + command + " "), () -> "usage lacks " + command);
        }
    }

    @Test
    void noArgumentsPrintsUsageAndExitsTwo() {
        CommandRun run = CommandRun.of();

        assertEquals(2, run.exitCode());
        assertTrue(run.stdout().startsWith("usage:") || run.stderr().startsWith("usage:"), run::toString);
    }

    private static List<String> concat(List<String> a, List<String> b) {
        return Stream.concat(a.stream(), b.stream()).toList();
    }
}

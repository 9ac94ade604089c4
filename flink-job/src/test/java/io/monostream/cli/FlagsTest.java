package io.monostream.cli;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pins the flag grammar: {@code --name value}, {@code --name=value}, switches, positionals, and the mistakes it refuses. */
class FlagsTest {
    private static final Set<String> VALUED = Set.of("model", "max-new-tokens", "question");
    private static final Set<String> SWITCHES = Set.of("help");

    private static Flags parse(String... args) {
        return Flags.parse("cmd", args, VALUED, SWITCHES);
    }

    @Test
    void readsSeparateAndInlineValuesSwitchesAndPositionals() {
        Flags f = parse("--model", "m", "--question=a=b", "--help", "extra", "--", "--max-new-tokens", "7");

        assertEquals("m", f.get("model", null));
        assertEquals("a=b", f.get("question", null), "only the first '=' splits");
        assertTrue(f.has("help"));
        assertEquals(7, f.getInt("max-new-tokens", 0));
        assertEquals(List.of("extra", "--"), f.positional());
    }

    @Test
    void valueMayStartWithDashes() {
        // a question can legitimately begin with "--"; a valued flag takes the next argument whatever it is
        assertEquals("--odd", parse("--question", "--odd").get("question", null));
    }

    @Test
    void laterValueWins() {
        assertEquals("b", parse("--model", "a", "--model", "b").get("model", null));
    }

    @Test
    void absentFlagsFallBack() {
        Flags f = parse();
        assertFalse(f.has("model"));
        assertEquals("x", f.get("model", "x"));
        assertEquals(16, f.getInt("max-new-tokens", 16));
    }

    @Test
    void integersAllowSurroundingSpaceAndNegatives() {
        assertEquals(-3, parse("--max-new-tokens", " -3 ").getInt("max-new-tokens", 0));
    }

    @Test
    void refusesUnknownFlagMissingValueBadIntegerAndMissingRequired() {
        assertMessage("unknown flag --colour", () -> parse("--colour", "red"));
        assertMessage("--model needs a value", () -> parse("--model"));
        assertMessage("must be an integer, got '12x'", () -> parse("--max-new-tokens", "12x").getInt("max-new-tokens", 0));
        assertMessage("must be an integer", () -> parse("--max-new-tokens", "99999999999").getInt("max-new-tokens", 0));
        assertMessage("--model is required", () -> parse().required("model"));
        assertMessage("does not exist", () -> parse("--model", "/no/such/dir/anywhere").existingPath("model"));
        assertMessage("unknown flag --help", () -> parse("--help=1"));
        assertMessage("is not a file", () -> parse("--model", System.getProperty("java.io.tmpdir")).existingFile("model"));
    }

    @Test
    void longValues() {
        assertEquals(5_000_000_000L, parse("--model", "5000000000").getLong("model", 0));
        assertEquals(9L, parse().getLong("model", 9));
        assertMessage("must be an integer, got '5e9'", () -> parse("--model", "5e9").getLong("model", 0));
    }

    private static void assertMessage(String fragment, Runnable action) {
        UsageException e = assertThrows(UsageException.class, action::run);
        assertTrue(e.getMessage().startsWith("cmd: ") || e.getMessage().contains("cmd"), e.getMessage());
        assertTrue(e.getMessage().contains(fragment), () -> "expected '" + fragment + "' in: " + e.getMessage());
    }
}

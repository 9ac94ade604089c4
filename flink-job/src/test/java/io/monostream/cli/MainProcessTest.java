package io.monostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * End to end in a fresh JVM through {@link Main#main} (System.exit, real stdout/stderr, real
 * logging): inspect's stdout is only the JSON even under a C locale, logs and errors go to stderr.
 */
class MainProcessTest {
    private static final Path MODEL = TestFiles.model("tiny-v2");

    private record Outcome(int exitCode, String stdout, String stderr) {}

    private static Outcome java(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        command.add("-cp");
        command.add(System.getProperty("java.class.path"));
        command.add("--enable-native-access=ALL-UNNAMED");
        // the application jar's logging configuration, not whatever test configuration a dependency brings
        command.add("-Dlog4j2.configurationFile=" + Main.class.getResource("/log4j2.xml"));
        if (System.getProperty("djl.cache.dir") != null) {
            command.add("-Ddjl.cache.dir=" + System.getProperty("djl.cache.dir"));
        }
        command.add(Main.class.getName());
        command.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(command);
        pb.environment().putAll(env);
        Process p = pb.start();
        CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> {
            try {
                return p.getErrorStream().readAllBytes();
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(5, TimeUnit.MINUTES), "the command did not finish");
        return new Outcome(p.exitValue(), new String(out, StandardCharsets.UTF_8), new String(err.join(), StandardCharsets.UTF_8));
    }

    @Test
    void inspectPrintsOnlyTheJsonOnStdoutUnderACLocale() throws Exception {
        JsonNode golden = new ObjectMapper().readTree(TestFiles.golden("tiny-v2-text.json").toFile());

        // LC_ALL=C makes the JVM's stdout ASCII: the golden text is not ASCII, so it must survive as JSON escapes
        Outcome o = java(Map.of("LC_ALL", "C", "LANG", "C"), "inspect", "--model", MODEL.toString(),
                "--question", golden.get("question").asText(), "--max-new-tokens", golden.get("max_new_tokens").asText());

        assertEquals(0, o.exitCode(), o::toString);
        JsonNode out = InspectCommandTest.onlyJsonObject(o.stdout());
        InspectCommandTest.assertMatchesGolden(golden, out);
        assertTrue(o.stderr().contains("loaded tiny-v2"), () -> "the load log line should be on stderr: " + o.stderr());
    }

    @Test
    void truncatedCheckpointExitsTwoWithOneStderrLine(@TempDir Path tmp) throws Exception {
        Path model = TestFiles.copyOfModel("tiny-v2", tmp);
        try (FileChannel ch = FileChannel.open(model.resolve("model.safetensors"), StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() - 1000);
        }

        Outcome o = java(Map.of(), "caption", "--model", model.toString(),
                "--image", TestFiles.image("small-37x23.png").toString());

        assertEquals(2, o.exitCode(), o::toString);
        assertEquals("", o.stdout());
        List<String> lines = o.stderr().lines().toList();
        assertEquals(1, lines.size(), o::toString);
        assertTrue(lines.getFirst().startsWith("error: "), lines.getFirst());
    }

    @Test
    void rejectedImageExitsTwoWithOneErrorLineAfterTheLoadLogs(@TempDir Path tmp) throws Exception {
        Path text = tmp.resolve("words.png");
        java.nio.file.Files.writeString(text, "not pixels");

        Outcome o = java(Map.of(), "ocr", "--model", MODEL.toString(), "--image", text.toString());

        assertEquals(2, o.exitCode(), o::toString);
        assertEquals("", o.stdout());
        // the model loads before the image is read, so INFO log lines may precede the error; no stack trace
        List<String> lines = o.stderr().lines().toList();
        assertEquals(1, lines.stream().filter(l -> l.startsWith("error: ")).count(), o::toString);
        assertTrue(lines.getLast().startsWith("error: ") && lines.getLast().contains("image"), o::toString);
        assertTrue(lines.stream().noneMatch(l -> l.startsWith("\tat ") || l.contains("Exception")), o::toString);
    }
}

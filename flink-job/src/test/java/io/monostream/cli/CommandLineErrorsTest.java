package io.monostream.cli;

import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.SafetensorsWriter;
import io.monostream.checkpoint.TensorInfo;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pins the error contract: every bad command line, missing file, bad checkpoint and rejected
 * image exits 2 with exactly one line on stderr starting with "error:", and nothing on stdout.
 */
class CommandLineErrorsTest {
    private static final String MODEL = TestFiles.model("tiny-v2").toString();
    private static final String IMAGE = TestFiles.image("wide-700x500.png").toString();
    private static final String DROPPED_TENSOR = "language_model.model.layers.1.feed_forward_ve.w2.weight";

    @TempDir
    static Path tmp;
    private static String truncatedModel;
    private static String missingTensorModel;
    private static String configNotJsonModel;
    private static String notAnImage;
    private static String missingTokenizerModel;

    @BeforeAll
    static void damagedInputs() throws IOException {
        Path truncated = TestFiles.copyOfModel("tiny-v2", tmp.resolve("truncated"));
        try (FileChannel ch = FileChannel.open(truncated.resolve(Checkpoint.SINGLE_FILE), StandardOpenOption.WRITE)) {
            ch.truncate(ch.size() / 2);
        }
        truncatedModel = truncated.toString();

        Path missing = TestFiles.copyOfModel("tiny-v2", tmp.resolve("missing-tensor"));
        SafetensorsWriter writer = new SafetensorsWriter();
        try (Checkpoint checkpoint = Checkpoint.open(missing)) {
            assertTrue(checkpoint.tensorNames().contains(DROPPED_TENSOR), "the dropped tensor must exist in tiny-v2");
            for (String name : new TreeSet<>(checkpoint.tensorNames())) {
                if (!name.equals(DROPPED_TENSOR)) {
                    TensorInfo info = checkpoint.info(name);
                    writer.raw(name, info.dtype().name(), info.shape(), checkpoint.segment(name).toArray(ValueLayout.JAVA_BYTE));
                }
            }
        }
        writer.write(missing.resolve(Checkpoint.SINGLE_FILE));
        missingTensorModel = missing.toString();

        Path badConfig = TestFiles.copyOfModel("tiny-v2", tmp.resolve("bad-config"));
        Files.writeString(badConfig.resolve(Checkpoint.CONFIG_FILE), "{ \"llm_config\": this is not JSON");
        configNotJsonModel = badConfig.toString();

        Path noTokenizer = TestFiles.copyOfModel("tiny-v2", tmp.resolve("no-tokenizer"));
        Files.delete(noTokenizer.resolve("tokenizer.model"));
        missingTokenizerModel = noTokenizer.toString();

        Path text = tmp.resolve("not-an-image.png");
        Files.writeString(text, "These are words, not pixels.\n");
        notAnImage = text.toString();
    }

    /** name, argument list, a fragment the error line must contain. */
    static Stream<Arguments> badCommandLines() {
        List<Arguments> cases = new ArrayList<>();
        add(cases, "unknown command", "unknown command", "frobnicate", "--model", MODEL);
        add(cases, "unknown flag", "--bogus", "caption", "--model", MODEL, "--image", IMAGE, "--bogus", "1");
        add(cases, "unknown flag (inspect)", "--colour", "inspect", "--model", MODEL, "--question", "q", "--colour=red");
        add(cases, "unknown flag (bench-moe)", "--model", "bench-moe", "--model", MODEL);
        add(cases, "flag missing its value", "--image", "caption", "--model", MODEL, "--image");
        add(cases, "switch given a value", "--help", "caption", "--help=yes");
        add(cases, "non-integer --max-new-tokens", "--max-new-tokens", "caption", "--model", MODEL, "--image", IMAGE, "--max-new-tokens", "ten");
        add(cases, "non-integer --max-tiles (inspect)", "--max-tiles", "inspect", "--model", MODEL, "--question", "q", "--max-tiles", "1.5");
        add(cases, "non-integer --max-pixels", "--max-pixels", "caption", "--model", MODEL, "--image", IMAGE, "--max-pixels", "lots");
        add(cases, "non-integer --max-image-bytes", "--max-image-bytes", "ocr", "--model", MODEL, "--image", IMAGE, "--max-image-bytes", "1MB");
        add(cases, "zero --max-new-tokens", "max_new_tokens", "caption", "--model", MODEL, "--image", IMAGE, "--max-new-tokens", "0");
        add(cases, "--model missing", "--model", "caption", "--image", IMAGE);
        add(cases, "--question missing (inspect)", "--question", "inspect", "--model", MODEL);
        add(cases, "missing --model directory", "no-such-model", "caption", "--model", tmp.resolve("no-such-model").toString(), "--image", IMAGE);
        add(cases, "--model is a file", "not a directory", "caption", "--model", IMAGE, "--image", IMAGE);
        add(cases, "missing --image file", "no-such.png", "caption", "--model", MODEL, "--image", tmp.resolve("no-such.png").toString());
        add(cases, "missing --image file (inspect)", "no-such.png", "inspect", "--model", MODEL, "--question", "q", "--image", tmp.resolve("no-such.png").toString());
        add(cases, "--image is a directory", "is not a file", "caption", "--model", MODEL, "--image", tmp.toString());
        add(cases, "--dump-tiles is a file", "--dump-tiles", "inspect", "--model", MODEL, "--question", "q", "--image", IMAGE, "--dump-tiles", IMAGE);
        add(cases, "truncated safetensors", "model.safetensors", "caption", "--model", truncatedModel, "--image", IMAGE);
        add(cases, "checkpoint missing a tensor", DROPPED_TENSOR, "caption", "--model", missingTensorModel, "--image", IMAGE);
        add(cases, "config.json not JSON", "config.json", "inspect", "--model", configNotJsonModel, "--question", "q");
        add(cases, "checkpoint without tokenizer.model", "tokenizer.model", "caption", "--model", missingTokenizerModel, "--image", IMAGE);
        add(cases, "--dtype f16 refused", "f16", "caption", "--model", MODEL, "--image", IMAGE, "--dtype", "f16");
        add(cases, "unknown --dtype", "int3", "caption", "--model", MODEL, "--image", IMAGE, "--dtype", "int3");
        add(cases, "--device cuda on a CPU-only build", "cpu", "caption", "--model", MODEL, "--image", IMAGE, "--device", "cuda");
        add(cases, "--device cuda:1 (inspect)", "cpu", "inspect", "--model", MODEL, "--question", "q", "--device", "cuda:1");
        add(cases, "--device cuda (bench-moe)", "cpu", "bench-moe", "--device", "cuda");
        add(cases, "--dtype f16 refused (bench-moe)", "f16", "bench-moe", "--dtype", "f16");
        add(cases, "image that is not an image", "image", "caption", "--model", MODEL, "--image", notAnImage);
        add(cases, "not an image (inspect)", "image", "inspect", "--model", MODEL, "--question", "q", "--image", notAnImage);
        add(cases, "image over --max-pixels", "pixels", "ocr", "--model", MODEL, "--image", IMAGE, "--max-pixels", "1000");
        add(cases, "image over --max-image-bytes", "bytes", "caption", "--model", MODEL, "--image", IMAGE, "--max-image-bytes", "100");
        return cases.stream();
    }

    private static void add(List<Arguments> cases, String name, String fragment, String... args) {
        cases.add(Arguments.of(name, fragment, args));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("badCommandLines")
    void exitsTwoWithOneErrorLine(String name, String fragment, String[] args) {
        CommandRun run = CommandRun.of(args);

        assertEquals(2, run.exitCode(), run::toString);
        assertEquals("", run.stdout(), "stdout must stay empty on an error");
        List<String> lines = run.stderrLines();
        assertEquals(1, lines.size(), run::toString);
        assertTrue(lines.getFirst().startsWith("error: "), lines.getFirst());
        assertTrue(lines.getFirst().contains(fragment), () -> "expected '" + fragment + "' in: " + lines.getFirst());
    }
}

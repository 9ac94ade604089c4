package io.monostream.cli;

import io.monostream.prompt.Task;
import io.monostream.runtime.Engine;
import io.monostream.runtime.EngineOptions;
import io.monostream.runtime.GenerationRequest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Pins caption / detailed-caption / ocr: exit 0 and stdout is exactly the text Engine.generateNow returns for the same request. */
class GenerateCommandTest {
    private static final Path MODEL = TestFiles.model("tiny-v2");
    private static Engine engine;

    @BeforeAll
    static void open() {
        engine = Engine.open(EngineOptions.builder(MODEL).build());
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    private static String expectedText(GenerationRequest.Builder request) {
        return engine.generateNow(request.build()).text();
    }

    private static byte[] bytes(Path file) throws IOException {
        return Files.readAllBytes(file);
    }

    @Test
    void captionWithDefaultsPrintsTheEngineText() throws IOException {
        Path image = TestFiles.image("wide-700x500.png");
        String expected = expectedText(GenerationRequest.builder("x").image(bytes(image)).task(Task.CAPTION));

        CommandRun run = CommandRun.of("caption", "--model", MODEL.toString(), "--image", image.toString());

        assertEquals(0, run.exitCode(), run::toString);
        assertFalse(expected.isEmpty(), "a caption of no tokens would not pin anything");
        assertEquals(expected + System.lineSeparator(), run.stdout());
    }

    @Test
    void ocrWithMaxTilesAndMaxNewTokensPrintsTheEngineText() throws IOException {
        Path image = TestFiles.image("tall-300x1200.png");
        String expected = expectedText(GenerationRequest.builder("x").image(bytes(image)).task(Task.OCR)
                .maxTiles(2).maxNewTokens(5));

        CommandRun run = CommandRun.of("ocr", "--model", MODEL.toString(), "--image", image.toString(),
                "--max-tiles", "2", "--max-new-tokens", "5");

        assertEquals(0, run.exitCode(), run::toString);
        assertEquals(expected + System.lineSeparator(), run.stdout());
    }

    @Test
    void detailedCaptionWithQuestionPrintsTheEngineText() throws IOException {
        Path image = TestFiles.image("small-37x23.png");
        String question = "What colour is the sky?";
        String expected = expectedText(GenerationRequest.builder("x").image(bytes(image)).task(Task.DETAILED_CAPTION)
                .question(question).maxNewTokens(12));

        CommandRun run = CommandRun.of("detailed-caption", "--model", MODEL.toString(), "--image", image.toString(),
                "--question", question, "--max-new-tokens=12");

        assertEquals(0, run.exitCode(), run::toString);
        assertEquals(expected + System.lineSeparator(), run.stdout());
    }

    @Test
    void differentTasksAskDifferentQuestions() throws IOException {
        // guards the tests above: if caption and ocr produced the same text, a mixed-up task would pass them
        byte[] image = bytes(TestFiles.image("wide-700x500.png"));
        String caption = engine.generateNow(GenerationRequest.builder("c").image(image).task(Task.CAPTION).maxNewTokens(8).build()).text();
        String ocr = engine.generateNow(GenerationRequest.builder("o").image(image).task(Task.OCR).maxNewTokens(8).build()).text();
        assertFalse(caption.equals(ocr), "caption and ocr gave the same text: " + caption);
    }
}

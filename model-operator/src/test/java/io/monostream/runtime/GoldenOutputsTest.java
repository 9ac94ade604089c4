package io.monostream.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.monostream.testing.Goldens;
import io.monostream.testing.TestModels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pins the FP32 engine to the independent reference (tools/reference/reference.py): the whole
 * prompt, the tile count, first-position logits within 1e-4, and greedy tokens and text exactly.
 */
class GoldenOutputsTest {
    private static final Map<String, Engine> ENGINES = new HashMap<>();

    static Stream<Path> goldens() {
        return TestModels.goldens();
    }

    private static Engine engine(String model) {
        return ENGINES.computeIfAbsent(model, m -> Engine.open(EngineOptions.builder(TestModels.model(m)).threads(2).build()));
    }

    @AfterAll
    static void close() {
        ENGINES.values().forEach(Engine::close);
        ENGINES.clear();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("goldens")
    void matchesReference(Path goldenFile) throws Exception {
        JsonNode golden = new ObjectMapper().readTree(goldenFile.toFile());
        Engine engine = engine(golden.get("model").asText());
        GenerationRequest.Builder request = GenerationRequest.builder(goldenFile.getFileName().toString())
                .question(golden.get("question").asText())
                .maxNewTokens(golden.get("max_new_tokens").asInt());
        if (golden.hasNonNull("image")) {
            request.image(Files.readAllBytes(TestModels.image(golden.get("image").asText())));
        }
        if (golden.hasNonNull("max_tiles")) {
            request.maxTiles(golden.get("max_tiles").asInt());
        }
        GenerationResult result = engine.generateNow(request.build());

        assertArrayEquals(Goldens.ints(golden.get("input_ids")), result.inputIds(), "prompt ids");
        assertEquals(golden.get("image_tiles").asInt(), result.imageTiles(), "tiles");
        float[] expected = Goldens.floats(golden.get("first_logits"));
        assertEquals(expected.length, result.firstLogits().length, "vocabulary size");
        double maxDiff = 0;
        for (int i = 0; i < expected.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(expected[i] - result.firstLogits()[i]));
        }
        assertTrue(maxDiff <= 1e-4, "first-position logits differ by up to " + maxDiff);
        assertArrayEquals(Goldens.ints(golden.get("generated_ids")), result.generatedIds(), "greedy tokens");
        assertEquals(golden.get("text").asText(), result.text(), "text");
    }

}

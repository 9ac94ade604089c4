package io.monostream.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pins {@code inspect}: stdout is exactly one JSON object whose ids, tiles, text and first-position
 * logits equal the reference goldens, and {@code --dump-tiles} writes the 8-bit RGB tiles.
 */
class InspectCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Path MODEL = TestFiles.model("tiny-v2");

    @TempDir
    Path tmp;

    @Test
    void imageRunMatchesWideGoldenAndDumpsItsTiles() throws IOException {
        JsonNode golden = JSON.readTree(TestFiles.golden("tiny-v2-wide.json").toFile());
        Path tiles = tmp.resolve("tiles");

        CommandRun run = CommandRun.of("inspect", "--model", MODEL.toString(),
                "--image", TestFiles.image(golden.get("image").asText()).toString(),
                "--question", golden.get("question").asText(),
                "--max-new-tokens", golden.get("max_new_tokens").asText(),
                "--dump-tiles", tiles.toString());

        assertEquals(0, run.exitCode(), run::toString);
        JsonNode out = onlyJsonObject(run.stdout());
        assertMatchesGolden(golden, out);

        int n = golden.get("image_tiles").asInt();
        List<String> expectedNames = new ArrayList<>();
        for (int k = 0; k < n; k++) {
            expectedNames.add("tile-" + k + ".png");
        }
        try (Stream<Path> files = Files.list(tiles)) {
            assertEquals(expectedNames.stream().sorted().toList(),
                    files.map(p -> p.getFileName().toString()).sorted().toList());
        }
        for (String name : expectedNames) {
            assertPng448Rgb8(tiles.resolve(name));
        }
    }

    @Test
    void textOnlyRunMatchesTextGoldenAndDumpsNoTiles() throws IOException {
        JsonNode golden = JSON.readTree(TestFiles.golden("tiny-v2-text.json").toFile());
        assertTrue(golden.get("image").isNull(), "the text golden has no image");
        Path tiles = tmp.resolve("tiles");

        CommandRun run = CommandRun.of("inspect", "--model", MODEL.toString(),
                "--question", golden.get("question").asText(),
                "--max-new-tokens", golden.get("max_new_tokens").asText(),
                "--dump-tiles", tiles.toString());

        assertEquals(0, run.exitCode(), run::toString);
        JsonNode out = onlyJsonObject(run.stdout());
        assertMatchesGolden(golden, out);
        assertEquals(0, out.get("image_tiles").asInt());
        assertFalse(Files.exists(tiles) && hasFiles(tiles), "a text-only run dumped tiles");
    }

    @Test
    void dumpedTileIsTheResizedImageBeforeNormalisation() throws IOException {
        // A 500x500 image fits one 448 tile (no thumbnail); the Pillow golden of that tile was
        // written by tools/fixtures/make_vision_goldens.py. Pixels within 1 as in ImagePreprocessorGoldenTest.
        Path vision = TestFiles.ROOT.resolve("io/monostream/vision/golden");
        Path tiles = tmp.resolve("tiles");

        CommandRun run = CommandRun.of("inspect", "--model", MODEL.toString(),
                "--image", vision.resolve("sources/gradient-500x500.png").toString(),
                "--question", "What is this?", "--max-new-tokens", "1", "--dump-tiles", tiles.toString());

        assertEquals(0, run.exitCode(), run::toString);
        assertEquals(1, onlyJsonObject(run.stdout()).get("image_tiles").asInt());
        BufferedImage dumped = ImageIO.read(tiles.resolve("tile-0.png").toFile());
        BufferedImage expected = ImageIO.read(vision.resolve("preprocess/gradient-500x500-s448/tile-0.png").toFile());
        assertEquals(expected.getWidth(), dumped.getWidth());
        assertEquals(expected.getHeight(), dumped.getHeight());
        int worst = 0;
        for (int y = 0; y < expected.getHeight(); y++) {
            for (int x = 0; x < expected.getWidth(); x++) {
                int a = expected.getRGB(x, y);
                int b = dumped.getRGB(x, y);
                for (int shift = 0; shift <= 16; shift += 8) {
                    worst = Math.max(worst, Math.abs(((a >> shift) & 0xFF) - ((b >> shift) & 0xFF)));
                }
            }
        }
        assertTrue(worst <= 1, "dumped tile differs from the Pillow golden by up to " + worst);
    }

    @Test
    void firstLogitsCoverTheVocabulary() throws IOException {
        int vocab = JSON.readTree(MODEL.resolve("config.json").toFile()).get("llm_config").get("vocab_size").asInt();

        CommandRun run = CommandRun.of("inspect", "--model", MODEL.toString(), "--question", "Hi", "--max-new-tokens", "1");

        assertEquals(0, run.exitCode(), run::toString);
        JsonNode out = onlyJsonObject(run.stdout());
        assertEquals(vocab, out.get("first_logits").size());
        assertEquals(1, out.get("generated_ids").size());
        for (JsonNode v : out.get("first_logits")) {
            assertTrue(v.isNumber(), "logit " + v + " is not a number");
        }
    }

    /** Parses stdout and fails unless it holds exactly one JSON object and nothing else. */
    static JsonNode onlyJsonObject(String stdout) throws IOException {
        List<JsonNode> values = new ArrayList<>();
        try (MappingIterator<JsonNode> it = JSON.readerFor(JsonNode.class).readValues(stdout)) {
            while (it.hasNext()) {
                values.add(it.next());
            }
        }
        assertEquals(1, values.size(), () -> "stdout holds " + values.size() + " JSON values: " + stdout);
        assertTrue(values.getFirst().isObject(), "stdout is not a JSON object");
        assertEquals(1, stdout.strip().lines().count(), "stdout is more than the JSON line");
        return values.getFirst();
    }

    static void assertMatchesGolden(JsonNode golden, JsonNode out) {
        assertArrayEquals(ints(golden.get("input_ids")), ints(out.get("input_ids")), "input_ids");
        assertEquals(golden.get("image_tiles").asInt(), out.get("image_tiles").asInt(), "image_tiles");
        assertArrayEquals(ints(golden.get("generated_ids")), ints(out.get("generated_ids")), "generated_ids");
        assertEquals(golden.get("text").asText(), out.get("text").asText(), "text");
        JsonNode expected = golden.get("first_logits");
        JsonNode actual = out.get("first_logits");
        assertEquals(expected.size(), actual.size(), "first_logits length");
        double worst = 0;
        for (int i = 0; i < expected.size(); i++) {
            worst = Math.max(worst, Math.abs(expected.get(i).asDouble() - actual.get(i).asDouble()));
        }
        assertTrue(worst <= 1e-4, "first_logits differ by up to " + worst);
    }

    private static int[] ints(JsonNode array) {
        assertTrue(array != null && array.isArray(), "missing array");
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            assertTrue(array.get(i).isIntegralNumber(), "not an integer: " + array.get(i));
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    /** Reads the PNG header itself: 448x448, bit depth 8, colour type 2 (RGB, no alpha, no palette). */
    private static void assertPng448Rgb8(Path png) throws IOException {
        byte[] head;
        try (InputStream in = Files.newInputStream(png)) {
            head = in.readNBytes(26);
        }
        assertEquals(26, head.length, png + " is too short");
        assertEquals("IHDR", new String(head, 12, 4, java.nio.charset.StandardCharsets.US_ASCII), png + " has no IHDR first");
        assertEquals(448, readInt(head, 16), png + " width");
        assertEquals(448, readInt(head, 20), png + " height");
        assertEquals(8, head[24], png + " bit depth");
        assertEquals(2, head[25], png + " colour type (2 = RGB)");
        BufferedImage decoded = ImageIO.read(png.toFile());
        assertEquals(448, decoded.getWidth());
    }

    private static int readInt(byte[] b, int at) {
        return ((b[at] & 0xFF) << 24) | ((b[at + 1] & 0xFF) << 16) | ((b[at + 2] & 0xFF) << 8) | (b[at + 3] & 0xFF);
    }

    private static boolean hasFiles(Path dir) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.findAny().isPresent();
        }
    }
}

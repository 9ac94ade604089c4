package io.monostream.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.monostream.checkpoint.CheckpointException;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pins the tokenizer against goldens computed by Python's sentencepiece the way the reference slow
 * tokenizer works (tools/fixtures/make_tokenizer_fixture.py): ids for text with specials, Chinese,
 * emoji via byte fallback, newlines; decode with and without special tokens.
 */
class InternLM2TokenizerTest {
    private static Path fixture;
    private static JsonNode goldens;
    private static InternLM2Tokenizer tokenizer;

    @BeforeAll
    static void load() throws IOException, URISyntaxException {
        fixture = Path.of(InternLM2TokenizerTest.class.getResource("/tokenizer-fixture/tokenizer.model").toURI()).getParent();
        goldens = new ObjectMapper().readTree(fixture.resolve("goldens.json").toFile());
        tokenizer = InternLM2Tokenizer.load(fixture);
    }

    @AfterAll
    static void close() {
        tokenizer.close();
    }

    @TestFactory
    Stream<DynamicTest> encodeMatchesPythonGoldens() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : goldens.get("encode")) {
            String text = c.get("text").asText();
            tests.add(DynamicTest.dynamicTest("encode " + abbreviate(text), () ->
                    assertArrayEquals(ints(c.get("ids")), tokenizer.encode(text, c.get("add_bos").asBoolean()), text)));
        }
        return tests.stream();
    }

    @TestFactory
    Stream<DynamicTest> decodeMatchesPythonGoldens() {
        List<DynamicTest> tests = new ArrayList<>();
        for (JsonNode c : goldens.get("decode")) {
            boolean skip = c.get("skip_special_tokens").asBoolean();
            String expected = c.get("text").asText();
            tests.add(DynamicTest.dynamicTest("decode skip=" + skip + " " + abbreviate(expected), () ->
                    assertEquals(expected, tokenizer.decode(ints(c.get("ids")), skip))));
        }
        return tests.stream();
    }

    @Test
    void vocabularyAndSpecialIdsMatchTheFixture() {
        assertEquals(goldens.get("vocab_size").asInt(), tokenizer.vocabSize());
        assertEquals(goldens.get("bos_id").asInt(), tokenizer.bosId());
        assertEquals(goldens.get("eos_id").asInt(), tokenizer.eosId());
        for (Iterator<Map.Entry<String, JsonNode>> it = goldens.get("token_ids").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            assertEquals(e.getValue().asInt(), tokenizer.tokenId(e.getKey()), e.getKey());
            assertEquals(e.getKey(), tokenizer.idToPiece(e.getValue().asInt()));
        }
        List<Integer> special = new ArrayList<>();
        for (int id = 0; id < tokenizer.vocabSize(); id++) {
            if (tokenizer.isSpecial(id)) {
                special.add(id);
            }
        }
        List<Integer> expected = new ArrayList<>();
        goldens.get("special_ids").forEach(n -> expected.add(n.asInt()));
        assertEquals(expected, special);
        for (Iterator<Map.Entry<String, JsonNode>> it = goldens.get("pieces").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            assertEquals(e.getValue().asText(), tokenizer.idToPiece(Integer.parseInt(e.getKey())));
        }
    }

    @Test
    void imageBlockTokenizesAsSplicedIds() {
        // spec §5: splicing n copies of <IMG_CONTEXT> equals tokenizing the full string
        int img = tokenizer.tokenId("<img>");
        int ctx = tokenizer.tokenId("<IMG_CONTEXT>");
        int end = tokenizer.tokenId("</img>");
        int[] ids = tokenizer.encode("<img>" + "<IMG_CONTEXT>".repeat(300) + "</img>", false);
        assertEquals(302, ids.length);
        assertEquals(img, ids[0]);
        assertEquals(end, ids[301]);
        for (int i = 1; i <= 300; i++) {
            assertEquals(ctx, ids[i]);
        }
    }

    @Test
    void unknownTokensAndIdsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> tokenizer.tokenId("<no-such-token>"));
        assertFalse(tokenizer.findTokenId("<no-such-token>").isPresent());
        assertTrue(tokenizer.findTokenId("<0x0A>").isPresent());
        assertThrows(IllegalArgumentException.class, () -> tokenizer.decode(new int[] {tokenizer.vocabSize()}, true));
        assertThrows(IllegalArgumentException.class, () -> tokenizer.idToPiece(-1));
    }

    @Test
    void rstripTokensEatFollowingWhitespace(@TempDir Path tmp) throws IOException {
        Path dir = copyFixture(tmp);
        String config = Files.readString(dir.resolve("tokenizer_config.json"));
        // make <img> (the first "rstrip": false after its content) eat whitespace on its right
        int at = config.indexOf("\"content\": \"<img>\"");
        int flag = config.indexOf("\"rstrip\": false", at);
        Files.writeString(dir.resolve("tokenizer_config.json"), config.substring(0, flag) + "\"rstrip\": true" + config.substring(flag + 15));
        try (InternLM2Tokenizer t = InternLM2Tokenizer.load(dir)) {
            assertArrayEquals(t.encode("<img>x", false), t.encode("<img>  \n x", false));
            assertFalse(java.util.Arrays.equals(tokenizer.encode("<img>x", false), tokenizer.encode("<img>  \n x", false)));
        }
    }

    @Test
    void inconsistentAddedTokensAreRejectedNamingTheFile(@TempDir Path tmp) throws IOException {
        Path dir = copyFixture(tmp);
        int sp = goldens.get("sp_piece_size").asInt();
        Files.writeString(dir.resolve("added_tokens.json"), "{\"<img>\": " + (sp + 5) + "}");
        CheckpointException e = assertThrows(CheckpointException.class, () -> InternLM2Tokenizer.load(dir));
        assertTrue(e.getMessage().contains("<img>") && e.getMessage().contains(dir.toString()), e.getMessage());

        Files.writeString(dir.resolve("added_tokens.json"), "{\"<extra>\": " + (sp + 20) + "}");
        CheckpointException gap = assertThrows(CheckpointException.class, () -> InternLM2Tokenizer.load(dir));
        assertTrue(gap.getMessage().contains("consecutive"), gap.getMessage());

        Files.delete(dir.resolve("tokenizer.model"));
        CheckpointException missing = assertThrows(CheckpointException.class, () -> InternLM2Tokenizer.load(dir));
        assertTrue(missing.getMessage().contains("tokenizer.model"), missing.getMessage());
    }

    @Test
    void worksWithTheModelFileAlone(@TempDir Path tmp) throws IOException {
        Files.copy(fixture.resolve("tokenizer.model"), tmp.resolve("tokenizer.model"));
        try (InternLM2Tokenizer t = InternLM2Tokenizer.load(tmp)) {
            assertEquals(goldens.get("sp_piece_size").asInt(), t.vocabSize());
            assertEquals(1, t.bosId());
            assertTrue(t.isSpecial(t.bosId()));
            // user-defined chat symbols are still matched before SentencePiece
            int imEnd = t.tokenId("<|im_end|>");
            int[] a = t.encode("a", false);
            int[] b = t.encode("b", false);
            int[] expected = java.util.stream.IntStream.concat(java.util.stream.IntStream.concat(
                    java.util.Arrays.stream(a), java.util.stream.IntStream.of(imEnd)), java.util.Arrays.stream(b)).toArray();
            assertArrayEquals(expected, t.encode("a<|im_end|>b", false));
        }
    }

    private static Path copyFixture(Path tmp) throws IOException {
        for (String f : new String[] {"tokenizer.model", "added_tokens.json", "tokenizer_config.json", "special_tokens_map.json"}) {
            Files.copy(fixture.resolve(f), tmp.resolve(f));
        }
        return tmp;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    private static String abbreviate(String s) {
        String oneLine = s.replace("\n", "\\n");
        return oneLine.length() <= 40 ? oneLine : oneLine.substring(0, 40) + "...";
    }
}

package io.monostream.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.monostream.runtime.Engine;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;
import io.monostream.runtime.Generator;
import io.monostream.vision.ImagePreprocessor;
import io.monostream.vision.RgbImage;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;

/**
 * {@code inspect}: greedy decoding with everything needed to diff this engine against another
 * implementation, as one JSON object on stdout (input ids, tiles, generated ids, text, the
 * first position's full logits), optionally the 8-bit tiles as PNGs.
 */
final class InspectCommand {
    private InspectCommand() {}

    static int run(String[] args) throws IOException {
        Set<String> valued = new HashSet<>(EngineFlags.VALUED);
        valued.addAll(Set.of("image", "question", "max-new-tokens", "max-tiles", "dump-tiles"));
        Flags flags = Flags.parse("inspect", args, valued, Set.of("help"));
        if (flags.has("help")) {
            System.out.println("usage: inspect --model DIR [--image FILE] --question TEXT [--max-new-tokens N] [--max-tiles N] [--dump-tiles DIR]\n"
                    + EngineFlags.HELP);
            return 0;
        }
        var options = EngineFlags.options(flags);
        String question = flags.required("question");
        byte[] image = flags.has("image") ? Files.readAllBytes(flags.existingPath("image")) : null;
        GenerationRequest request = GenerationRequest.builder("inspect")
                .image(image)
                .question(question)
                .maxNewTokens(flags.getInt("max-new-tokens", 16))
                .maxTiles(flags.getInt("max-tiles", 0))
                .build();
        try (Engine engine = Engine.open(options)) {
            Generator generator = engine.generator();
            Generator.Prepared prepared = generator.prepare(request);
            if (flags.has("dump-tiles") && prepared.image() != null) {
                Path dir = Path.of(flags.get("dump-tiles", "."));
                Files.createDirectories(dir);
                int k = 0;
                for (RgbImage tile : prepared.image().tiles()) {
                    ImagePreprocessor.writePng(tile, dir.resolve("tile-" + k++ + ".png"));
                }
            }
            GenerationResult result = engine.generateNow(request);
            ObjectMapper json = new ObjectMapper();
            ObjectNode out = json.createObjectNode();
            out.put("model", result.modelName());
            ArrayNode ids = out.putArray("input_ids");
            for (int id : result.inputIds()) {
                ids.add(id);
            }
            out.put("image_tiles", result.imageTiles());
            if (prepared.image() != null) {
                out.putArray("grid").add(prepared.image().grid().columns()).add(prepared.image().grid().rows());
            }
            ArrayNode gen = out.putArray("generated_ids");
            for (int id : result.generatedIds()) {
                gen.add(id);
            }
            out.put("text", result.text());
            out.put("stop_reason", result.stopReason());
            ArrayNode logits = out.putArray("first_logits");
            for (float v : result.firstLogits()) {
                logits.add(v);
            }
            ObjectNode timings = out.putObject("timings_ms");
            timings.put("preprocess", result.timings().preprocessNanos() / 1e6);
            timings.put("prefill", result.timings().prefillNanos() / 1e6);
            timings.put("decode", result.timings().decodeNanos() / 1e6);
            System.out.println(json.writeValueAsString(out));
            return 0;
        }
    }
}

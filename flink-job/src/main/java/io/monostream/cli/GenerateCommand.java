package io.monostream.cli;

import io.monostream.prompt.Task;
import io.monostream.runtime.Engine;
import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;

import java.io.IOException;
import java.nio.file.Files;
import java.util.HashSet;
import java.util.Set;

/** {@code caption} / {@code detailed-caption} / {@code ocr}: one image in, the text out on stdout. */
final class GenerateCommand {
    private GenerateCommand() {}

    static int run(String name, Task task, String[] args) throws IOException {
        Set<String> valued = new HashSet<>(EngineFlags.VALUED);
        valued.addAll(Set.of("image", "question", "max-new-tokens", "max-tiles"));
        Flags flags = Flags.parse(name, args, valued, Set.of("help"));
        if (flags.has("help")) {
            System.out.println("usage: " + name + " --model DIR --image FILE [--question TEXT] [--max-new-tokens N] [--max-tiles N]\n"
                    + EngineFlags.HELP);
            return 0;
        }
        var options = EngineFlags.options(flags);
        byte[] image = Files.readAllBytes(flags.existingFile("image"));
        GenerationRequest request = GenerationRequest.builder("cli")
                .image(image)
                .task(task)
                .question(flags.get("question", null))
                .maxNewTokens(flags.getInt("max-new-tokens", GenerationRequest.DEFAULT_MAX_NEW_TOKENS))
                .maxTiles(flags.getInt("max-tiles", 0))
                .build();
        try (Engine engine = Engine.open(options)) {
            GenerationResult result = engine.generateNow(request);
            System.out.println(result.text());
            return 0;
        }
    }
}

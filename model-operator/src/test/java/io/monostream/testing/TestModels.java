package io.monostream.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/** Where the generated test checkpoints, images and goldens live (see tools/reference). */
public final class TestModels {
    private TestModels() {}

    public static Path resources() {
        try {
            return Path.of(TestModels.class.getResource("/golden").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    public static Path model(String name) {
        return resources().resolve("models").resolve(name);
    }

    public static Path image(String name) {
        return resources().resolve("images").resolve(name);
    }

    public static Stream<Path> goldens() {
        try {
            return Files.list(resources().resolve("golden")).filter(p -> p.toString().endsWith(".json")).sorted();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A writable copy of a test checkpoint, for tests that rewrite weights or config. */
    public static Path copyOf(String name, Path into) throws IOException {
        Path source = model(name);
        Path target = into.resolve(name);
        Files.createDirectories(target);
        try (Stream<Path> files = Files.list(source)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, target.resolve(f.getFileName()));
            }
        }
        return target;
    }
}

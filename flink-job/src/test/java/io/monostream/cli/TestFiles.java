package io.monostream.cli;

import io.monostream.testing.TestModels;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

/**
 * The model-operator test fixtures (tiny checkpoints, images, goldens) as files: from the source
 * tree next to this module when present, else through the model-operator test-jar.
 */
final class TestFiles {
    static final Path ROOT = locate();

    private TestFiles() {}

    private static Path locate() {
        Path sibling = Path.of("..", "model-operator", "src", "test", "resources").toAbsolutePath().normalize();
        return Files.isDirectory(sibling.resolve("golden")) ? sibling : TestModels.resources();
    }

    static Path model(String name) {
        return ROOT.resolve("models").resolve(name);
    }

    static Path image(String name) {
        return ROOT.resolve("images").resolve(name);
    }

    static Path golden(String name) {
        return ROOT.resolve("golden").resolve(name);
    }

    /** A writable copy of a test checkpoint under {@code into}, for tests that damage it. */
    static Path copyOfModel(String name, Path into) throws IOException {
        Path target = into.resolve(name);
        Files.createDirectories(target);
        try (Stream<Path> files = Files.list(model(name))) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.copy(f, target.resolve(f.getFileName()));
            }
        }
        return target;
    }
}

package io.monostream.job;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The README's configuration table is exactly what the options declare (regenerate it with this test's message). */
class ReadmeConfigurationTableTest {
    @Test
    void readmeListsEveryOptionWithItsDefault() throws Exception {
        String readme = Files.readString(Path.of("../README.md"));
        String table = CommandLineOptions.markdownTable();
        assertTrue(readme.contains(table), () -> "README.md's configuration table is stale; it should read:\n" + table);
    }
}

package io.monostream.job.resolve;

import io.monostream.schema.ReasonCode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Pins the file: rules: inside the roots only, no '..', no symbolic link leading out. */
class FileFetcherTest {
    @TempDir
    Path dir;

    private FetchException refused(FileFetcher f, URI uri) {
        return assertThrows(FetchException.class, () -> f.fetch(uri, 1 << 20));
    }

    @Test
    void readsInsideTheRootAndRefusesEverythingElse() throws Exception {
        Path root = Files.createDirectories(dir.resolve("root"));
        Path outside = Files.createDirectories(dir.resolve("outside"));
        Files.write(root.resolve("a.bin"), new byte[] {1, 2, 3});
        Files.write(outside.resolve("secret"), new byte[] {9});
        Files.createSymbolicLink(root.resolve("link"), outside.resolve("secret"));
        FileFetcher f = new FileFetcher(List.of(root.toString()));

        assertArrayEquals(new byte[] {1, 2, 3}, f.fetch(root.resolve("a.bin").toUri(), 100));
        assertEquals(ReasonCode.FETCH_DENIED, refused(f, outside.resolve("secret").toUri()).reason());
        assertEquals(ReasonCode.FETCH_DENIED, refused(f, URI.create("file://" + root + "/../outside/secret")).reason());
        assertEquals(ReasonCode.FETCH_DENIED, refused(f, URI.create("file://" + root + "/%2e%2e/outside/secret")).reason());
        assertEquals(ReasonCode.FETCH_DENIED, refused(f, root.resolve("link").toUri()).reason());
        assertEquals(ReasonCode.FETCH_FAILED, refused(f, root.resolve("missing").toUri()).reason());
        assertEquals(ReasonCode.IMAGE_TOO_LARGE, assertThrows(FetchException.class,
                () -> f.fetch(root.resolve("a.bin").toUri(), 2)).reason());
        assertEquals(ReasonCode.FETCH_DENIED, refused(new FileFetcher(List.of()), root.resolve("a.bin").toUri()).reason());
    }
}

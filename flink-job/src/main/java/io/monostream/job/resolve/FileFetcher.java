package io.monostream.job.resolve;

import io.monostream.schema.ReasonCode;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads {@code file:} URIs under allowed roots only. A URI whose path has a {@code ..} segment is
 * refused outright; the rest is normalised and checked against the roots twice: as written and
 * after resolving symbolic links, so a link inside a root cannot lead outside it.
 */
public final class FileFetcher {
    private final List<Path> roots;

    public FileFetcher(List<String> allowedRoots) {
        List<Path> r = new ArrayList<>();
        for (String s : allowedRoots) {
            if (s.isBlank()) {
                continue;
            }
            Path p = Path.of(s).toAbsolutePath().normalize();
            try {
                p = p.toRealPath();
            } catch (IOException e) {
                // a root that does not exist yet still bounds what may be named
            }
            r.add(p);
        }
        this.roots = List.copyOf(r);
    }

    public byte[] fetch(URI uri, long maxBytes) throws FetchException {
        String raw = uri.getRawPath();
        if (raw == null || !uri.isAbsolute() || uri.getAuthority() != null && !uri.getAuthority().isEmpty()) {
            throw FetchException.denied("only local absolute file: URIs are allowed: " + uri);
        }
        for (String seg : raw.split("/")) {
            if (seg.equals("..") || seg.equalsIgnoreCase("%2e%2e") || seg.equalsIgnoreCase(".%2e") || seg.equalsIgnoreCase("%2e.")) {
                throw FetchException.denied("path traversal ('..') refused: " + uri);
            }
        }
        Path path;
        try {
            path = Path.of(uri).toAbsolutePath().normalize();
        } catch (IllegalArgumentException e) {
            throw FetchException.denied("not a usable file: URI: " + uri);
        }
        if (!underRoot(path)) {
            throw FetchException.denied("outside the allowed roots: " + path);
        }
        Path real;
        try {
            real = path.toRealPath();
        } catch (NoSuchFileException e) {
            throw FetchException.failed("no such file: " + path, e);
        } catch (IOException e) {
            throw FetchException.failed("cannot resolve " + path + ": " + e, e);
        }
        if (!underRoot(real)) {
            throw FetchException.denied("a symbolic link leads outside the allowed roots: " + path + " -> " + real);
        }
        try {
            if (!Files.isRegularFile(real)) {
                throw FetchException.failed("not a regular file: " + path, null);
            }
            long size = Files.size(real);
            if (size > maxBytes) {
                throw new FetchException(ReasonCode.IMAGE_TOO_LARGE, size + " bytes > limit " + maxBytes);
            }
            try (InputStream in = Files.newInputStream(real)) {
                return CappedRead.readAtMost(in, maxBytes);
            }
        } catch (IOException e) {
            throw FetchException.failed("cannot read " + path + ": " + e, e);
        }
    }

    private boolean underRoot(Path p) {
        for (Path root : roots) {
            if (p.startsWith(root)) {
                return true;
            }
        }
        return false;
    }
}

package io.monostream.job.resolve;

import io.monostream.schema.ReasonCode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;

/** Reads a stream into memory but never more than a cap: a lying or endless source cannot exhaust the heap. */
final class CappedRead {
    private CappedRead() {}

    static byte[] readAtMost(InputStream in, long maxBytes) throws IOException, FetchException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buf = new byte[64 * 1024];
        long total = 0;
        int n;
        while ((n = in.read(buf)) > 0) {
            total += n;
            if (total > maxBytes) {
                throw new FetchException(ReasonCode.IMAGE_TOO_LARGE, "more than " + maxBytes + " bytes");
            }
            out.write(buf, 0, n);
        }
        return out.toByteArray();
    }
}

package io.monostream.vision;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Reads the golden files written by tools/fixtures/make_vision_goldens.py (test resources, golden/). */
final class Golden {
    private Golden() {
    }

    static JsonNode manifest() {
        try {
            return new ObjectMapper().readTree(bytes("manifest.json"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static byte[] bytes(String name) {
        try (InputStream in = Golden.class.getResourceAsStream("golden/" + name)) {
            if (in == null) {
                throw new IllegalStateException("missing golden file " + name + "; run tools/fixtures/make_vision_goldens.py");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static float[] floats(String name) {
        ByteBuffer b = ByteBuffer.wrap(bytes(name)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    /** Decodes a golden PNG with the decoder under test; the PNGs are plain 8-bit RGB, so this path is simple. */
    static RgbImage png(String name) {
        return new ImageDecoder(ImageLimits.defaults()).decode(bytes(name));
    }

    /** Largest per-sample difference; also counts differing samples into counts[0]. */
    static int maxDiff(RgbImage a, RgbImage b, int[] counts) {
        if (a.width() != b.width() || a.height() != b.height()) {
            throw new AssertionError("size " + a.width() + "x" + a.height() + " != " + b.width() + "x" + b.height());
        }
        int max = 0;
        for (int i = 0; i < a.rgb().length; i++) {
            int d = Math.abs((a.rgb()[i] & 0xFF) - (b.rgb()[i] & 0xFF));
            if (d != 0) {
                counts[0]++;
            }
            max = Math.max(max, d);
        }
        return max;
    }
}

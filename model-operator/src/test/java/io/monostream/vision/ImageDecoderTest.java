package io.monostream.vision;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import java.util.zip.CRC32;
import org.junit.jupiter.api.Test;

/** Pins decoding to PIL's convert("RGB") pixels for every format, and every rejection reason with its message. */
class ImageDecoderTest {
    private final ImageDecoder decoder = new ImageDecoder(ImageLimits.defaults());

    @Test
    void everyFormatDecodesToPilPixels() {
        for (JsonNode d : Golden.manifest().get("decode")) {
            String file = d.get("file").asText();
            byte[] bytes = Golden.bytes(file);
            RgbImage img = decoder.decode(bytes);
            RgbImage expected = new RgbImage(d.get("width").asInt(), d.get("height").asInt(), Golden.bytes(d.get("expected").asText()));
            int[] differing = new int[1];
            int max = Golden.maxDiff(img, expected, differing);
            double mean = meanDiff(img, expected);
            System.out.printf("decode %-24s (PIL mode %-4s): max diff %d, mean %.3f, %d of %d samples differ%n", file,
                    d.get("pilMode").asText(), max, mean, differing[0], img.rgb().length);
            if (d.get("lossless").asBoolean()) {
                assertEquals(0, max, file + " must decode exactly as PIL");
            } else if (file.endsWith(".jpg")) {
                // the JDK's libjpeg 6b and Debian's libjpeg-turbo differ only in rounding
                assertTrue(max <= 4 && mean < 0.5, file + ": max diff " + max + ", mean " + mean);
            } else {
                // TwelveMonkeys' VP8 decoder upsamples chroma more simply than libwebp: edges differ
                assertTrue(mean < 4, file + ": mean diff " + mean);
            }
            assertEquals(d.get("format").asText().replace("tiff", "tif"), decoder.probe(bytes).format().replace("tiff", "tif"),
                    file);
        }
    }

    @Test
    void rgbaDropsAlphaWithoutCompositing() {
        RgbImage rgba = decoder.decode(Golden.bytes("decode/rgba.png"));
        RgbImage rgb = decoder.decode(Golden.bytes("decode/rgb.png"));
        assertArrayEquals(rgb.rgb(), rgba.rgb(), "alpha must be dropped, colours kept as stored");
    }

    @Test
    void probeReadsHeaderOnly() {
        ImageHeader h = decoder.probe(Golden.bytes("decode/photo.jpg"));
        assertEquals(new ImageHeader("jpeg", 64, 48), h);
    }

    @Test
    void bombHeaderIsRefusedBeforeDecoding() {
        byte[] bomb = pngClaiming(100_000, 100_000);
        long t0 = System.nanoTime();
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> decoder.decode(bomb));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertEquals(ImageRejectedException.Reason.IMAGE_TOO_LARGE, e.reason());
        assertEquals("png image of 100000x100000 = 10000000000 pixels exceeds the limit of 40000000 pixels", e.getMessage());
        assertTrue(ms < 2000, "refusal took " + ms + " ms");
        assertEquals(new ImageHeader("png", 100_000, 100_000), decoder.probe(bomb));
    }

    @Test
    void truncatedPngIsCorrupt() {
        byte[] png = Golden.bytes("decode/rgb.png");
        assertCorrupt(Arrays.copyOf(png, png.length / 2));
        assertCorrupt(Arrays.copyOf(png, png.length - 24)); // the last deflate bytes missing
        assertCorrupt(Arrays.copyOf(png, png.length - 30));
    }

    @Test
    void pngMissingOnlyItsTrailerDecodesAsPilDoes() {
        // PIL loads a PNG whose pixels are all there but whose zlib checksum, CRC and IEND are cut
        byte[] png = Golden.bytes("decode/rgb.png");
        assertArrayEquals(decoder.decode(png).rgb(), decoder.decode(Arrays.copyOf(png, png.length - 20)).rgb());
    }

    @Test
    void truncatedJpegIsCorruptNotGrey() {
        byte[] jpg = Golden.bytes("decode/noise.jpg");
        assertCorrupt(Arrays.copyOf(jpg, jpg.length * 6 / 10));
        assertCorrupt(Arrays.copyOf(jpg, jpg.length - 2)); // only the EOI marker is missing
    }

    @Test
    void truncatedOtherFormatsAreCorrupt() {
        for (String f : new String[] {"decode/rgb.gif", "decode/rgb.bmp", "decode/rgb.tif", "decode/rgb-lossless.webp", "decode/photo.webp"}) {
            byte[] b = Golden.bytes(f);
            assertCorrupt(Arrays.copyOf(b, b.length * 6 / 10));
        }
    }

    @Test
    void randomBytesAndTextAreUnsupported() {
        byte[] noise = new byte[4096];
        new Random(7).nextBytes(noise);
        noise[0] = 0x13; // not a magic number by chance
        assertReason(ImageRejectedException.Reason.UNSUPPORTED_FORMAT, noise);
        assertReason(ImageRejectedException.Reason.UNSUPPORTED_FORMAT, "hello, this is text\n".getBytes(StandardCharsets.UTF_8));
        ImageRejectedException e = assertReason(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
                "%PDF-1.7\n1 0 obj\n<<>>\nendobj\n".getBytes(StandardCharsets.US_ASCII));
        assertEquals("not a supported image format (PNG, JPEG, GIF, BMP, TIFF, WebP); first bytes: 255044462d312e37", e.getMessage());
    }

    @Test
    void emptyIsEmpty() {
        ImageRejectedException e = assertReason(ImageRejectedException.Reason.EMPTY_IMAGE, new byte[0]);
        assertEquals("image is empty (0 bytes)", e.getMessage());
    }

    @Test
    void overByteLimitIsTooLarge() {
        byte[] png = Golden.bytes("decode/rgb.png");
        ImageDecoder small = new ImageDecoder(new ImageLimits(100, 1_000_000));
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> small.decode(png));
        assertEquals(ImageRejectedException.Reason.IMAGE_TOO_LARGE, e.reason());
        assertEquals("encoded image of " + png.length + " bytes exceeds the limit of 100 bytes", e.getMessage());
    }

    @Test
    void overPixelLimitIsTooLarge() {
        ImageDecoder small = new ImageDecoder(new ImageLimits(1 << 20, 24 * 16 - 1));
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> small.decode(Golden.bytes("decode/rgb.png")));
        assertEquals(ImageRejectedException.Reason.IMAGE_TOO_LARGE, e.reason());
        assertEquals("png image of 24x16 = 384 pixels exceeds the limit of 383 pixels", e.getMessage());
    }

    private static double meanDiff(RgbImage a, RgbImage b) {
        long sum = 0;
        for (int i = 0; i < a.rgb().length; i++) {
            sum += Math.abs((a.rgb()[i] & 0xFF) - (b.rgb()[i] & 0xFF));
        }
        return (double) sum / a.rgb().length;
    }

    private void assertCorrupt(byte[] bytes) {
        ImageRejectedException e = assertReason(ImageRejectedException.Reason.CORRUPT_IMAGE, bytes);
        System.out.println("corrupt: " + e.getMessage());
    }

    private ImageRejectedException assertReason(ImageRejectedException.Reason reason, byte[] bytes) {
        ImageRejectedException e = assertThrows(ImageRejectedException.class, () -> decoder.decode(bytes));
        assertEquals(reason, e.reason(), e.getMessage());
        assertFalse(e.getMessage().isBlank());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e;
    }

    /** A valid PNG signature and IHDR (correct CRC) claiming w x h, one tiny IDAT and IEND. */
    static byte[] pngClaiming(int w, int h) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'});
        ByteBuffer ihdr = ByteBuffer.allocate(13).putInt(w).putInt(h).put((byte) 8).put((byte) 2).put((byte) 0).put((byte) 0).put((byte) 0);
        chunk(out, "IHDR", ihdr.array());
        chunk(out, "IDAT", new byte[] {0x78, (byte) 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
        chunk(out, "IEND", new byte[0]);
        return out.toByteArray();
    }

    private static void chunk(ByteArrayOutputStream out, String type, byte[] data) {
        byte[] t = type.getBytes(StandardCharsets.US_ASCII);
        out.writeBytes(ByteBuffer.allocate(4).putInt(data.length).array());
        out.writeBytes(t);
        out.writeBytes(data);
        CRC32 crc = new CRC32();
        crc.update(t);
        crc.update(data);
        out.writeBytes(ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    }
}

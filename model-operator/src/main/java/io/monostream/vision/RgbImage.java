package io.monostream.vision;

/**
 * An 8-bit RGB image: {@code rgb} holds {@code width * height * 3} bytes, interleaved R, G, B,
 * rows top to bottom. Bytes are unsigned; read a channel as {@code rgb[i] & 0xFF}.
 *
 * <pre>{@code
 * RgbImage img = new ImageDecoder(ImageLimits.defaults()).decode(bytes);
 * int red00 = img.rgb()[0] & 0xFF;
 * }</pre>
 */
public record RgbImage(int width, int height, byte[] rgb) {
    public RgbImage {
        if (width <= 0 || height <= 0) {
            throw new IllegalArgumentException("image size must be positive: " + width + "x" + height);
        }
        if (rgb == null || rgb.length != (long) width * height * 3) {
            throw new IllegalArgumentException("RGB buffer of " + (rgb == null ? 0 : rgb.length)
                    + " bytes does not match " + width + "x" + height + "x3");
        }
    }

    /** Channel {@code c} (0 = R) of pixel (x, y), 0..255. */
    public int sample(int x, int y, int c) {
        return rgb[(y * width + x) * 3 + c] & 0xFF;
    }

    /** The {@code w x h} region whose top-left corner is (x0, y0). */
    public RgbImage crop(int x0, int y0, int w, int h) {
        if (x0 < 0 || y0 < 0 || x0 + w > width || y0 + h > height) {
            throw new IllegalArgumentException("crop " + w + "x" + h + "+" + x0 + "+" + y0 + " outside " + width + "x" + height);
        }
        byte[] out = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            System.arraycopy(rgb, ((y0 + y) * width + x0) * 3, out, y * w * 3, w * 3);
        }
        return new RgbImage(w, h, out);
    }
}

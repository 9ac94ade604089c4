package io.monostream.vision;

/**
 * Limits checked before an image is decoded: encoded size, and pixel count read from the
 * header (so a small file that claims 100k x 100k pixels is refused without allocating).
 */
public record ImageLimits(long maxEncodedBytes, long maxPixels) {
    public static final long DEFAULT_MAX_ENCODED_BYTES = 32L << 20;
    public static final long DEFAULT_MAX_PIXELS = 40_000_000L;

    public ImageLimits {
        if (maxEncodedBytes <= 0 || maxPixels <= 0) {
            throw new IllegalArgumentException("image limits must be positive: " + maxEncodedBytes + " bytes, " + maxPixels + " pixels");
        }
    }

    public static ImageLimits defaults() {
        return new ImageLimits(DEFAULT_MAX_ENCODED_BYTES, DEFAULT_MAX_PIXELS);
    }
}

package io.monostream.job.resolve;

import io.monostream.vision.ImageDecoder;
import io.monostream.vision.ImageHeader;
import io.monostream.vision.ImageLimits;
import io.monostream.vision.ImageRejectedException;

import java.util.Locale;
import java.util.Set;

/**
 * The image checks the job makes before spending model time, from the header only (the engine's
 * {@link ImageDecoder} decodes the pixels later, with the same limits): empty, encoded size,
 * format, and pixel count (a tiny file claiming 100k x 100k is refused without allocating).
 * A file damaged past its header is found by the engine's decode (CORRUPT_IMAGE from the model stage).
 */
public final class ImageCheck {
    /** Formats the engine decodes (header format names, lower case). */
    public static final Set<String> SUPPORTED = Set.of("png", "jpeg", "gif", "bmp", "tiff", "webp");

    private final ImageDecoder decoder;
    private final long maxPixels;

    public ImageCheck(ImageLimits limits) {
        this.decoder = new ImageDecoder(limits);
        this.maxPixels = limits.maxPixels();
    }

    /** The header of an acceptable image; otherwise an ImageRejectedException with the reason. */
    public ImageHeader check(byte[] image) {
        ImageHeader header = decoder.probe(image);
        String format = canonical(header.format());
        if (!SUPPORTED.contains(format)) {
            throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
                    "format " + format + " is not one of " + SUPPORTED);
        }
        if (header.pixels() > maxPixels) {
            throw new ImageRejectedException(ImageRejectedException.Reason.IMAGE_TOO_LARGE,
                    header.width() + "x" + header.height() + " pixels > limit " + maxPixels);
        }
        return header;
    }

    private static String canonical(String format) {
        String f = format.toLowerCase(Locale.ROOT);
        return switch (f) {
            case "jpg" -> "jpeg";
            case "tif" -> "tiff";
            default -> f;
        };
    }
}

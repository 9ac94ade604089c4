package io.monostream.job.resolve;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Iterator;
import java.util.Locale;
import java.util.Set;

/**
 * The image checks the job makes before spending model time: empty, encoded size, format, pixel
 * count from the header (a tiny file claiming 100k x 100k is refused without allocating), then a
 * full decode that treats decoder warnings as corruption (a truncated JPEG decodes "successfully"
 * to grey with only a warning).
 */
public final class ImageCheck {
    /** Formats the engine takes (ImageIO format names, lower case). */
    public static final Set<String> SUPPORTED = Set.of("png", "jpeg", "webp", "tiff");

    private final long maxBytes;
    private final long maxPixels;

    public ImageCheck(long maxBytes, long maxPixels) {
        this.maxBytes = maxBytes;
        this.maxPixels = maxPixels;
    }

    /** Throws a FetchException whose reason is EMPTY_IMAGE, IMAGE_TOO_LARGE, UNSUPPORTED_FORMAT or CORRUPT_IMAGE. */
    public void check(byte[] image) throws FetchException {
        if (image == null || image.length == 0) {
            throw new FetchException("EMPTY_IMAGE", "no image bytes");
        }
        if (image.length > maxBytes) {
            throw new FetchException("IMAGE_TOO_LARGE", image.length + " bytes > limit " + maxBytes);
        }
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(image))) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (!readers.hasNext()) {
                throw new FetchException("UNSUPPORTED_FORMAT", "not a recognised image format");
            }
            ImageReader reader = readers.next();
            try {
                String format = reader.getFormatName().toLowerCase(Locale.ROOT);
                if (format.equals("jpg")) {
                    format = "jpeg";
                } else if (format.equals("tif")) {
                    format = "tiff";
                }
                if (!SUPPORTED.contains(format)) {
                    throw new FetchException("UNSUPPORTED_FORMAT", "format " + format + " is not one of " + SUPPORTED);
                }
                reader.setInput(in, true, true);
                long w = reader.getWidth(0);
                long h = reader.getHeight(0);
                if (w <= 0 || h <= 0) {
                    throw new FetchException("CORRUPT_IMAGE", "header says " + w + "x" + h);
                }
                if (w * h > maxPixels) {
                    throw new FetchException("IMAGE_TOO_LARGE", w + "x" + h + " pixels > limit " + maxPixels);
                }
                StringBuilder warnings = new StringBuilder();
                reader.addIIOReadWarningListener((src, warning) -> warnings.append(warning).append("; "));
                reader.read(0);
                if (!warnings.isEmpty()) {
                    throw new FetchException("CORRUPT_IMAGE", "decoder warnings: " + warnings);
                }
            } finally {
                reader.dispose();
            }
        } catch (FetchException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            throw new FetchException("CORRUPT_IMAGE", "cannot decode: " + e, e);
        }
    }
}

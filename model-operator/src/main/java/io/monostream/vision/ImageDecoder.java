package io.monostream.vision;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;
import javax.imageio.IIOException;
import javax.imageio.ImageIO;
import javax.imageio.ImageReadParam;
import javax.imageio.ImageReader;
import javax.imageio.event.IIOReadWarningListener;
import javax.imageio.stream.ImageInputStream;
import javax.imageio.stream.MemoryCacheImageInputStream;

/**
 * Decodes PNG, JPEG, GIF (first frame), BMP, TIFF and WebP bytes to 8-bit RGB with PIL's
 * {@code convert("RGB")} semantics (see {@link PilRgbConversion}), enforcing {@link ImageLimits}
 * before any pixel is allocated: the byte count first, then the pixel count read from the header.
 *
 * <pre>{@code
 * ImageDecoder decoder = new ImageDecoder(ImageLimits.defaults());
 * RgbImage img = decoder.decode(bytes); // or ImageRejectedException with a reason
 * }</pre>
 *
 * <p>Thread-safe: each call uses its own ImageIO reader.
 */
public final class ImageDecoder {
    // libjpeg's "Premature end of JPEG file" and similar: the data ran out and the rest of the
    // image would be filled with grey. PIL refuses such files ("image file is truncated").
    private static final Pattern TRUNCATION_WARNING =
            Pattern.compile("premature end of jpeg file|truncat|end of file|\\beof\\b", Pattern.CASE_INSENSITIVE);

    static {
        // Register the TwelveMonkeys readers even when ImageIO was first used by another class
        // loader (e.g. Flink's parent loader), whose scan could not see this jar.
        Thread t = Thread.currentThread();
        ClassLoader previous = t.getContextClassLoader();
        try {
            t.setContextClassLoader(ImageDecoder.class.getClassLoader());
            ImageIO.scanForPlugins();
        } finally {
            t.setContextClassLoader(previous);
        }
    }

    private final ImageLimits limits;

    public ImageDecoder(ImageLimits limits) {
        this.limits = java.util.Objects.requireNonNull(limits, "limits");
    }

    /** Format and size from the header, after the byte-count check; no pixels are decoded. */
    public ImageHeader probe(byte[] encoded) {
        checkBytes(encoded);
        ImageReader reader = readerFor(encoded);
        try (ImageInputStream in = stream(encoded)) {
            reader.setInput(in, false, true); // TIFF may seek back to an IFD
            return header(reader);
        } catch (IOException | RuntimeException e) {
            throw corrupt("cannot read the image header", e);
        } finally {
            reader.dispose();
        }
    }

    /** The image's pixels as 8-bit RGB; the first frame of an animation. */
    public RgbImage decode(byte[] encoded) {
        checkBytes(encoded);
        ImageReader reader = readerFor(encoded);
        List<String> warnings = new ArrayList<>();
        try (ImageInputStream in = stream(encoded)) {
            reader.setInput(in, false, true); // TIFF may seek back to an IFD
            ImageHeader header = header(reader);
            if (header.pixels() > limits.maxPixels()) {
                throw new ImageRejectedException(ImageRejectedException.Reason.IMAGE_TOO_LARGE,
                        header.format() + " image of " + header.width() + "x" + header.height() + " = " + header.pixels()
                                + " pixels exceeds the limit of " + limits.maxPixels() + " pixels");
            }
            reader.addIIOReadWarningListener(warningsInto(warnings));
            ImageReadParam param = reader.getDefaultReadParam();
            BufferedImage img = reader.read(0, param);
            for (String w : warnings) {
                if (TRUNCATION_WARNING.matcher(w).find()) {
                    throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT_IMAGE,
                            header.format() + " image is truncated or damaged: " + oneLine(w));
                }
            }
            if (img.getWidth() != header.width() || img.getHeight() != header.height()) {
                throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT_IMAGE,
                        header.format() + " header says " + header.width() + "x" + header.height()
                                + " but the decoded image is " + img.getWidth() + "x" + img.getHeight());
            }
            return PilRgbConversion.toRgb(img);
        } catch (ImageRejectedException e) {
            throw e;
        } catch (IOException | RuntimeException e) {
            // IIOException, EOFException, and the runtime exceptions some decoders throw on bad data
            throw corrupt("cannot decode the image", e);
        } catch (OutOfMemoryError e) {
            throw new ImageRejectedException(ImageRejectedException.Reason.IMAGE_TOO_LARGE,
                    "image needs more memory than is available to decode", e);
        } finally {
            reader.dispose();
        }
    }

    private void checkBytes(byte[] encoded) {
        if (encoded == null || encoded.length == 0) {
            throw new ImageRejectedException(ImageRejectedException.Reason.EMPTY_IMAGE, "image is empty (0 bytes)");
        }
        if (encoded.length > limits.maxEncodedBytes()) {
            throw new ImageRejectedException(ImageRejectedException.Reason.IMAGE_TOO_LARGE,
                    "encoded image of " + encoded.length + " bytes exceeds the limit of " + limits.maxEncodedBytes() + " bytes");
        }
    }

    private static ImageReader readerFor(byte[] encoded) {
        try (ImageInputStream in = stream(encoded)) {
            Iterator<ImageReader> readers = ImageIO.getImageReaders(in);
            if (readers.hasNext()) {
                return readers.next();
            }
        } catch (IOException e) {
            throw corrupt("cannot read the image bytes", e);
        }
        throw new ImageRejectedException(ImageRejectedException.Reason.UNSUPPORTED_FORMAT,
                "not a supported image format (PNG, JPEG, GIF, BMP, TIFF, WebP); first bytes: " + hexPrefix(encoded));
    }

    private static ImageHeader header(ImageReader reader) throws IOException {
        String format = reader.getFormatName().toLowerCase(Locale.ROOT);
        int w = reader.getWidth(0);
        int h = reader.getHeight(0);
        if (w <= 0 || h <= 0) {
            throw new ImageRejectedException(ImageRejectedException.Reason.CORRUPT_IMAGE,
                    format + " header gives an invalid size " + w + "x" + h);
        }
        return new ImageHeader(format, w, h);
    }

    private static ImageInputStream stream(byte[] encoded) {
        return new MemoryCacheImageInputStream(new ByteArrayInputStream(encoded));
    }

    private static IIOReadWarningListener warningsInto(List<String> warnings) {
        return (source, warning) -> warnings.add(warning == null ? "" : warning);
    }

    private static ImageRejectedException corrupt(String what, Throwable e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String detail = root instanceof java.io.EOFException
                ? "the data ends before the image is complete (truncated file)"
                : root.getMessage() == null ? root.getClass().getSimpleName() : oneLine(root.getMessage());
        if (e instanceof IIOException && e != root && e.getMessage() != null) {
            detail = oneLine(e.getMessage()) + " (" + detail + ")";
        }
        return new ImageRejectedException(ImageRejectedException.Reason.CORRUPT_IMAGE, "corrupt image, " + what + ": " + detail, e);
    }

    private static String oneLine(String s) {
        return s.replaceAll("\\s+", " ").trim();
    }

    private static String hexPrefix(byte[] b) {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < Math.min(8, b.length); i++) {
            sb.append(String.format("%02x", b[i] & 0xFF));
        }
        return sb.toString();
    }
}

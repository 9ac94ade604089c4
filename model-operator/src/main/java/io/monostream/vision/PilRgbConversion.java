package io.monostream.vision;

import java.awt.color.ColorSpace;
import java.awt.image.BufferedImage;
import java.awt.image.ColorModel;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;

/**
 * Turns a decoded {@link BufferedImage} into 8-bit RGB the way PIL's {@code convert("RGB")}
 * does (spec §3.1), reading raw samples rather than {@code getRGB}, which would colour-manage:
 * <ul>
 *   <li>alpha is dropped, never composited;</li>
 *   <li>palette indices are looked up in the palette (its alpha ignored);</li>
 *   <li>grey is copied to R, G and B;</li>
 *   <li>1, 2 and 4-bit grey is scaled to 0..255 (PIL's L;1, L;2, L;4 unpackers);</li>
 *   <li>16-bit colour keeps the high byte (PIL reads RGB;16B that way);</li>
 *   <li>16-bit grey is clipped to 0..255, not scaled: PIL opens it as mode "I" and I → RGB clips,
 *       so a value of 256 or more becomes 255;</li>
 *   <li>CMYK uses PIL's naive formula, v = (255 − k) − c(255 − k)/255;</li>
 *   <li>anything else (floating-point samples, other colour spaces) falls back to Java's
 *       colour-managed {@code getRGB}.</li>
 * </ul>
 */
final class PilRgbConversion {
    private PilRgbConversion() {
    }

    static RgbImage toRgb(BufferedImage img) {
        int w = img.getWidth();
        int h = img.getHeight();
        byte[] out = new byte[w * h * 3];
        ColorModel cm = img.getColorModel();
        Raster raster = img.getRaster();
        int[] sizes = raster.getSampleModel().getSampleSize();
        int[] row = new int[w * raster.getNumBands()];
        if (cm instanceof IndexColorModel icm) {
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, row);
                for (int x = 0, o = y * w * 3; x < w; x++) {
                    int i = row[x];
                    out[o++] = (byte) icm.getRed(i);
                    out[o++] = (byte) icm.getGreen(i);
                    out[o++] = (byte) icm.getBlue(i);
                }
            }
            return new RgbImage(w, h, out);
        }
        int type = cm.getColorSpace().getType();
        boolean integral = raster.getTransferType() == java.awt.image.DataBuffer.TYPE_BYTE
                || raster.getTransferType() == java.awt.image.DataBuffer.TYPE_USHORT
                || raster.getTransferType() == java.awt.image.DataBuffer.TYPE_INT;
        int colours = cm.getNumColorComponents();
        if (integral && type == ColorSpace.TYPE_RGB && colours == 3 && raster.getNumBands() >= 3) {
            int[] r = new int[w];
            int[] g = new int[w];
            int[] b = new int[w];
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, r);
                raster.getSamples(0, y, w, 1, 1, g);
                raster.getSamples(0, y, w, 1, 2, b);
                for (int x = 0, o = y * w * 3; x < w; x++) {
                    out[o++] = (byte) to8(r[x], sizes[0], false);
                    out[o++] = (byte) to8(g[x], sizes[1], false);
                    out[o++] = (byte) to8(b[x], sizes[2], false);
                }
            }
            return new RgbImage(w, h, out);
        }
        if (integral && type == ColorSpace.TYPE_GRAY && colours == 1) {
            int[] v = new int[w];
            for (int y = 0; y < h; y++) {
                raster.getSamples(0, y, w, 1, 0, v);
                for (int x = 0, o = y * w * 3; x < w; x++) {
                    byte g = (byte) to8(v[x], sizes[0], true);
                    out[o++] = g;
                    out[o++] = g;
                    out[o++] = g;
                }
            }
            return new RgbImage(w, h, out);
        }
        if (integral && type == ColorSpace.TYPE_CMYK && colours == 4) {
            int[] px = new int[4];
            for (int y = 0; y < h; y++) {
                for (int x = 0, o = y * w * 3; x < w; x++) {
                    raster.getPixel(x, y, px);
                    int nk = 255 - to8(px[3], sizes[3], false);
                    for (int c = 0; c < 3; c++) {
                        int v = to8(px[c], sizes[c], false);
                        out[o++] = (byte) (nk - mulDiv255(v, nk));
                    }
                }
            }
            return new RgbImage(w, h, out);
        }
        for (int y = 0; y < h; y++) {
            for (int x = 0, o = y * w * 3; x < w; x++) {
                int argb = img.getRGB(x, y);
                out[o++] = (byte) (argb >> 16);
                out[o++] = (byte) (argb >> 8);
                out[o++] = (byte) argb;
            }
        }
        return new RgbImage(w, h, out);
    }

    // a*b/255 rounded, in the integer form PIL uses
    private static int mulDiv255(int a, int b) {
        int t = a * b + 128;
        return ((t >> 8) + t) >> 8;
    }

    private static int to8(int v, int bits, boolean grey) {
        if (bits == 8) {
            return v;
        }
        if (bits < 8) {
            return v * 255 / ((1 << bits) - 1);
        }
        if (grey && bits == 16) {
            return Math.min(v, 255); // PIL mode "I" → RGB clips
        }
        return v >>> (bits - 8);
    }
}

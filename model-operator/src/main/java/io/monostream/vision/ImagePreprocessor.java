package io.monostream.vision;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import javax.imageio.ImageIO;

/**
 * InternVL's image preprocessing (spec §3): decode, choose the grid, resize the whole image
 * with Pillow's bicubic to the grid, cut tiles row-major, append the thumbnail, normalise.
 *
 * <pre>{@code
 * ImagePreprocessor pre = new ImagePreprocessor(TilingOptions.internVl(12), ImageLimits.defaults());
 * PreprocessedImage p = pre.preprocess(jpegBytes);
 * float[] pixels = p.pixelValues(); // [T,3,448,448]
 * }</pre>
 */
public final class ImagePreprocessor {
    // ImageNet statistics used by torchvision's Normalize in the reference (spec §3.7)
    private static final float[] MEAN = {0.485f, 0.456f, 0.406f};
    private static final float[] STD = {0.229f, 0.224f, 0.225f};

    private final TilingOptions options;
    private final ImageDecoder decoder;

    public ImagePreprocessor(TilingOptions options, ImageLimits limits) {
        this.options = Objects.requireNonNull(options, "options");
        this.decoder = new ImageDecoder(limits);
    }

    /** Decodes {@code encoded} (see {@link ImageDecoder} for the errors) and preprocesses it. */
    public PreprocessedImage preprocess(byte[] encoded) {
        return preprocess(decoder.decode(encoded));
    }

    public PreprocessedImage preprocess(RgbImage image) {
        int s = options.tileSize();
        TileGrid grid = options.dynamic()
                ? DynamicTiler.chooseGrid(image.width(), image.height(), options.minTiles(), options.maxTiles(), s)
                : new TileGrid(1, 1);
        List<RgbImage> tiles = new ArrayList<>(DynamicTiler.tileCount(grid, options.useThumbnail()));
        RgbImage resized = PillowBicubic.resize(image, s * grid.columns(), s * grid.rows());
        if (grid.count() == 1) {
            tiles.add(resized);
        } else {
            for (int k = 0; k < grid.count(); k++) {
                tiles.add(resized.crop((k % grid.columns()) * s, (k / grid.columns()) * s, s, s));
            }
            if (options.useThumbnail()) {
                tiles.add(PillowBicubic.resize(image, s, s));
            }
        }
        float[] values = new float[tiles.size() * 3 * s * s];
        for (int t = 0; t < tiles.size(); t++) {
            normalise(tiles.get(t), values, t * 3 * s * s);
        }
        return new PreprocessedImage(grid, tiles, values, s);
    }

    /** Writes one tile as CHW at {@code offset}: (v/255 − mean)/std in float32, the torchvision order. */
    static void normalise(RgbImage tile, float[] out, int offset) {
        int plane = tile.width() * tile.height();
        byte[] rgb = tile.rgb();
        for (int c = 0; c < 3; c++) {
            float mean = MEAN[c];
            float std = STD[c];
            int o = offset + c * plane;
            for (int p = 0; p < plane; p++) {
                float x = (rgb[p * 3 + c] & 0xFF) / 255f;
                out[o + p] = (x - mean) / std;
            }
        }
    }

    /** A copy of {@code image} as a {@link BufferedImage#TYPE_INT_RGB} image. */
    public static BufferedImage toBufferedImage(RgbImage image) {
        BufferedImage out = new BufferedImage(image.width(), image.height(), BufferedImage.TYPE_INT_RGB);
        int[] row = new int[image.width()];
        byte[] rgb = image.rgb();
        for (int y = 0; y < image.height(); y++) {
            for (int x = 0, i = y * image.width() * 3; x < image.width(); x++, i += 3) {
                row[x] = (rgb[i] & 0xFF) << 16 | (rgb[i + 1] & 0xFF) << 8 | (rgb[i + 2] & 0xFF);
            }
            out.setRGB(0, y, image.width(), 1, row, 0, image.width());
        }
        return out;
    }

    /** Writes {@code image} as a lossless PNG (used by {@code inspect --dump-tiles}). */
    public static void writePng(RgbImage image, Path file) throws IOException {
        if (!ImageIO.write(toBufferedImage(image), "png", file.toFile())) {
            throw new IOException("no PNG writer available for " + file);
        }
    }
}

package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.norm.LayerNorm;
import io.monostream.torch.Aten;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.Tensor;
import io.monostream.vision.TorchBicubic;

/**
 * The whole "vision encoder" of a monolithic model (spec §4): a 14×14 patch convolution plus a
 * learned absolute position embedding, the pixel shuffle, and the {@code mlp1} connector.
 */
final class VisionEmbedding {
    private final NDArray patchWeight;
    private final NDArray patchBias;
    /**
     * The patch convolution as a product over flattened patches, [C, 3·P·P] sharing the conv
     * weight's storage, where the CPU kernel takes many rows of it, else null. Its output
     * is already in [T, G, G, C] order: 5 tiles took 29-34 ms to their position-added patches this
     * way, against 44-57 ms through libtorch's convolution and the transpose after it.
     */
    private final Projection patchProduct;
    /** [G, G, C]: the patch part of the position table at this model's grid (CLS row dropped, spec §4). */
    private final NDArray positions;
    private final NDArray lnWeight;
    private final NDArray lnBias;
    private final Projection fc1;
    private final Projection fc2;
    private final Precision precision;
    private final int patchSize;
    private final int grid;
    private final int channels;
    private final int scale;
    private final PixelShuffle.Version shuffle;

    VisionEmbedding(WeightLoader weights, int imageSize, int tableImageSize, int patchSize, double downsampleRatio, String psVersion) {
        String p = "vision_model.embeddings.";
        this.patchWeight = weights.load(p + "patch_embedding.weight");
        this.patchBias = weights.load(p + "patch_embedding.bias");
        this.patchSize = patchSize;
        this.grid = imageSize / patchSize;
        this.channels = (int) patchWeight.getShape().get(0);
        this.patchProduct = patchProduct(patchWeight, patchBias, weights.manager());
        this.scale = (int) Math.round(1 / downsampleRatio);
        if (grid % scale != 0 || Math.abs(1.0 / scale - downsampleRatio) > 1e-9) {
            throw new IllegalArgumentException("downsample_ratio " + downsampleRatio + " does not divide a " + grid + "x" + grid + " patch grid");
        }
        this.shuffle = PixelShuffle.Version.parse(psVersion);
        this.positions = loadPositions(weights, p + "position_embedding", tableImageSize / patchSize);
        this.lnWeight = weights.load("mlp1.0.weight");
        this.lnBias = weights.load("mlp1.0.bias");
        this.fc1 = weights.linear("mlp1.1.weight", "mlp1.1.bias");
        this.fc2 = weights.linear("mlp1.3.weight", "mlp1.3.bias");
        this.precision = weights.precision();
    }

    private static Projection patchProduct(NDArray weight, NDArray bias, NDManager owner) {
        CpuKernels kernel = CpuKernels.get().orElse(null);
        if (kernel == null) {
            return null;
        }
        try (NDArray view = weight.reshape(weight.getShape().get(0), -1); Tensor flat = Aten.wrap(view);
             Tensor b = Aten.wrap(bias)) {
            return kernel.takesManyRows(flat) ? Projection.of(flat, b, false, owner) : null;
        }
    }

    /** The table's patch rows as [G, G, C], bicubic-resized when the checkpoint's grid differs (spec §4). */
    private NDArray loadPositions(WeightLoader weights, String name, int tableGrid) {
        float[] table = weights.floats(name); // [1, 1 + g², C], fp32 for the one-off resize
        float[] patches = java.util.Arrays.copyOfRange(table, channels, table.length); // [g², C]
        NDManager m = weights.manager();
        NDArray result;
        if (tableGrid == grid) {
            result = Aten.fromFloats(m, patches, grid, grid, channels);
        } else {
            // TorchBicubic works on [C][h][w]
            float[] chw = new float[patches.length];
            int cells = tableGrid * tableGrid;
            for (int cell = 0; cell < cells; cell++) {
                for (int c = 0; c < channels; c++) {
                    chw[c * cells + cell] = patches[cell * channels + c];
                }
            }
            float[] resized = TorchBicubic.resize(chw, channels, tableGrid, tableGrid, grid, grid);
            result = Aten.fromFloats(m, resized, channels, grid, grid).transpose(1, 2, 0);
        }
        NDArray rounded = weights.precision().round(result);
        weights.count(weights.precision().dtype(), (long) grid * grid * channels);
        if (rounded != result) {
            result.close();
        }
        return rounded;
    }

    /** Image tokens per tile. */
    int tokensPerTile() {
        return (grid / scale) * (grid / scale);
    }

    /**
     * @param pixels [T, 3, S, S] normalised tiles
     * @return [T · tokensPerTile, hidden] image embeddings in tile order, fp32 (widened from the
     *     model's precision)
     */
    NDArray forward(NDArray pixels) {
        long tiles = pixels.getShape().get(0);
        // each intermediate is closed once the next one is made (views keep what they need), so a
        // request holds about two of them at a time instead of all ten
        NDArray rounded = precision.round(pixels);
        NDArray patches; // [T, G, G, C]
        if (patchProduct != null) {
            // each patch's 3·P·P pixels in the conv weight's (channel, row, column) order
            NDArray flat = rounded.reshape(tiles, 3, grid, patchSize, grid, patchSize).transpose(0, 2, 4, 1, 3, 5)
                    .reshape(tiles * grid * grid, 3L * patchSize * patchSize);
            patches = patchProduct.apply(flat).reshape(tiles, grid, grid, channels);
            flat.close();
        } else {
            patches = Conv2d.conv2d(rounded, patchWeight, patchBias, new Shape(patchSize, patchSize), new Shape(0, 0),
                    new Shape(1, 1), 1).singletonOrThrow().transpose(0, 2, 3, 1);
        }
        if (rounded != pixels) {
            rounded.close();
        }
        NDArray x = replace(patches, patches.add(positions));
        x = replace(x, PixelShuffle.apply(x, scale, shuffle)); // [T, tokens, C·s²]
        x = replace(x, x.reshape(tiles * tokensPerTile(), (long) channels * scale * scale));
        x = replace(x, LayerNorm.layerNorm(x, new Shape(x.getShape().get(1)), lnWeight, lnBias, 1e-5f).singletonOrThrow());
        x = replace(x, fc1.apply(x));
        x = replace(x, Activation.gelu(x));
        x = replace(x, fc2.apply(x));
        return replace(x, Precision.widen(x));
    }

    /** {@code next}, after closing {@code done} (unless it is the same array). */
    private static NDArray replace(NDArray done, NDArray next) {
        if (next != done) {
            done.close();
        }
        return next;
    }
}

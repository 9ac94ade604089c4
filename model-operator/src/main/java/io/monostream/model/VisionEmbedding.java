package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import ai.djl.nn.convolutional.Conv2d;
import ai.djl.nn.core.Linear;
import ai.djl.nn.norm.LayerNorm;
import io.monostream.vision.TorchBicubic;

/**
 * The whole "vision encoder" of a monolithic model (spec §4): a 14×14 patch convolution plus a
 * learned absolute position embedding, the pixel shuffle, and the {@code mlp1} connector.
 */
final class VisionEmbedding {
    private final NDArray patchWeight;
    private final NDArray patchBias;
    /** [G, G, C]: the patch part of the position table at this model's grid (CLS row dropped, spec §4). */
    private final NDArray positions;
    private final NDArray lnWeight;
    private final NDArray lnBias;
    private final NDArray fc1Weight;
    private final NDArray fc1Bias;
    private final NDArray fc2Weight;
    private final NDArray fc2Bias;
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
        this.scale = (int) Math.round(1 / downsampleRatio);
        if (grid % scale != 0 || Math.abs(1.0 / scale - downsampleRatio) > 1e-9) {
            throw new IllegalArgumentException("downsample_ratio " + downsampleRatio + " does not divide a " + grid + "x" + grid + " patch grid");
        }
        this.shuffle = PixelShuffle.Version.parse(psVersion);
        this.positions = loadPositions(weights, p + "position_embedding", tableImageSize / patchSize);
        this.lnWeight = weights.load("mlp1.0.weight");
        this.lnBias = weights.load("mlp1.0.bias");
        this.fc1Weight = weights.load("mlp1.1.weight");
        this.fc1Bias = weights.load("mlp1.1.bias");
        this.fc2Weight = weights.load("mlp1.3.weight");
        this.fc2Bias = weights.load("mlp1.3.bias");
    }

    /** The table's patch rows as [G, G, C], bicubic-resized when the checkpoint's grid differs (spec §4). */
    private NDArray loadPositions(WeightLoader weights, String name, int tableGrid) {
        NDArray table = weights.load(name); // [1, 1 + g², C]
        NDArray patches = table.get("0, 1:"); // [g², C]
        if (tableGrid == grid) {
            // an owned copy: a view would outlive the loaded table's (Java-owned) buffer
            NDArray result = patches.reshape(grid, grid, channels).duplicate();
            result.attach(weights.manager());
            table.close();
            return result;
        }
        // TorchBicubic works on [C][h][w]
        float[] chw = patches.transpose(1, 0).toFloatArray();
        float[] resized = TorchBicubic.resize(chw, channels, tableGrid, tableGrid, grid, grid);
        table.close();
        return weights.manager().create(resized, new Shape(channels, grid, grid)).transpose(1, 2, 0);
    }

    /** Image tokens per tile. */
    int tokensPerTile() {
        return (grid / scale) * (grid / scale);
    }

    /**
     * @param pixels [T, 3, S, S] normalised tiles
     * @return [T · tokensPerTile, hidden] image embeddings in tile order
     */
    NDArray forward(NDArray pixels) {
        long tiles = pixels.getShape().get(0);
        NDArray patches = Conv2d.conv2d(pixels, patchWeight, patchBias,
                        new Shape(patchSize, patchSize), new Shape(0, 0), new Shape(1, 1), 1)
                .singletonOrThrow(); // [T, C, G, G]
        NDArray grid2d = patches.transpose(0, 2, 3, 1).add(positions); // [T, G, G, C]
        NDArray shuffled = PixelShuffle.apply(grid2d, scale, shuffle); // [T, tokens, C·s²]
        NDArray x = shuffled.reshape(tiles * tokensPerTile(), (long) channels * scale * scale);
        x = LayerNorm.layerNorm(x, new Shape(x.getShape().get(1)), lnWeight, lnBias, 1e-5f).singletonOrThrow();
        x = Activation.gelu(Linear.linear(x, fc1Weight, fc1Bias).singletonOrThrow());
        return Linear.linear(x, fc2Weight, fc2Bias).singletonOrThrow();
    }
}

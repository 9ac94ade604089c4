package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.checkpoint.Checkpoint;

/**
 * Turns checkpoint tensors into resident FP32 arrays owned by one manager (the model's).
 * The checkpoint has already checked every shape against the config.
 */
final class WeightLoader {
    private final Checkpoint checkpoint;
    private final NDManager manager;

    WeightLoader(Checkpoint checkpoint, NDManager manager) {
        this.checkpoint = checkpoint;
        this.manager = manager;
    }

    NDArray load(String name) {
        float[] values = checkpoint.readFloats(name);
        NDArray array = manager.create(values, new Shape(checkpoint.info(name).shape()));
        array.setName(name);
        return array;
    }

    NDManager manager() {
        return manager;
    }
}

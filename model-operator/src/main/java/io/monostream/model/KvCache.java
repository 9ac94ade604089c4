package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;

/**
 * Keys and values of one sequence, per layer, as [kvHeads, S, headDim] (keys already rotated).
 * Owned by one request; closing it frees the native memory.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private int length;

    public KvCache(NDManager parent, int layers) {
        this.manager = parent.newSubManager();
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
    }

    /** Tokens cached so far (the position of the next token). */
    public int length() {
        return length;
    }

    NDArray keys(int layer) {
        return keys[layer];
    }

    NDArray values(int layer) {
        return values[layer];
    }

    /** Appends this forward's keys and values of one layer and returns the full ones. */
    NDArray[] append(int layer, NDArray k, NDArray v) {
        NDArray fullK = keys[layer] == null ? k : keys[layer].concat(k, 1);
        NDArray fullV = values[layer] == null ? v : values[layer].concat(v, 1);
        fullK.attach(manager);
        fullV.attach(manager);
        if (keys[layer] != null) {
            keys[layer].close();
            values[layer].close();
        }
        keys[layer] = fullK;
        values[layer] = fullV;
        return new NDArray[] {fullK, fullV};
    }

    /** Called once per forward after every layer appended. */
    void advance(int tokens) {
        length += tokens;
    }

    /** Bytes held by cached keys and values. */
    public long bytes() {
        long total = 0;
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                total += keys[i].size() * keys[i].getDataType().getNumOfBytes() * 2;
            }
        }
        return total;
    }

    @Override
    public void close() {
        manager.close();
    }
}

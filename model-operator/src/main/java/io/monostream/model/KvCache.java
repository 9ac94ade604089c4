package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.monostream.torch.Aten;
import io.monostream.torch.DType;
import io.monostream.torch.Tensor;

/**
 * Keys and values of one sequence, per layer, as [kvHeads, capacity, headDim] (keys already
 * rotated), in the model's precision (BF16 or F32). The capacity is fixed when the cache is made, so a decode step writes one row in
 * place instead of reallocating, and the memory a request holds is known at admission.
 * Owned by one request; closing it frees the native memory.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final int kvHeads;
    private final int headDim;
    private final int capacity;
    private final DataType dataType;
    private final NDArray[] keys;
    private final NDArray[] values;
    private final Tensor[][] tensors; // per layer: the key and value arrays' storage as tensors, for kernels
    private int length;

    KvCache(NDManager parent, int layers, int kvHeads, int headDim, int capacity, DataType dataType) {
        this.manager = parent.newSubManager();
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.capacity = capacity;
        this.dataType = dataType;
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
        this.tensors = new Tensor[layers][];
    }

    /** Tokens cached so far (the position of the next token). */
    public int length() {
        return length;
    }

    public int capacity() {
        return capacity;
    }

    public static long bytesPerToken(int layers, int kvHeads, int headDim, DataType dataType) {
        return 2L * layers * kvHeads * headDim * dataType.getNumOfBytes();
    }

    /**
     * Writes this forward's keys and values of one layer at [length, length + L) and returns
     * views of the whole cached prefix, [kvHeads, length + L, d] each.
     */
    NDArray[] append(int layer, NDArray k, NDArray v) {
        int end = length + (int) k.getShape().get(1);
        checkRoom(end);
        allocate(layer);
        NDIndex rows = new NDIndex(":, {}:{}, :", length, end);
        keys[layer].set(rows, k);
        values[layer].set(rows, v);
        return cached(layer, end, k.getManager());
    }

    /**
     * The layer's keys and values [kvHeads, capacity, d] as tensors sharing the cache's storage,
     * for a kernel that writes row {@link #length()} itself ({@code CpuKernels#attendDecode}).
     * Owned by the cache: do not close them.
     */
    Tensor[] tensors(int layer) {
        return tensors(layer, 1);
    }

    /** {@link #tensors(int)} for a kernel that writes rows {@code length .. length + rows - 1}. */
    Tensor[] tensors(int layer, int rows) {
        checkRoom(length + rows);
        allocate(layer);
        if (tensors[layer] == null) {
            Tensor k = Aten.wrap(keys[layer]);
            Tensor v = Aten.wrap(values[layer]);
            manager.attachInternal(java.util.UUID.randomUUID().toString(), k);
            manager.attachInternal(java.util.UUID.randomUUID().toString(), v);
            tensors[layer] = new Tensor[] {k, v};
        }
        return tensors[layer];
    }

    /** Views of the layer's first {@code end} cached rows, [kvHeads, end, d] each, in {@code manager}. */
    NDArray[] cached(int layer, int end, NDManager manager) {
        checkRoom(end);
        allocate(layer);
        NDIndex prefix = new NDIndex(":, :{}, :", end);
        return new NDArray[] {keys[layer].get(manager, prefix), values[layer].get(manager, prefix)};
    }

    private void checkRoom(int end) {
        if (end > capacity) {
            throw new IllegalStateException("KV cache overflow: " + end + " tokens in a cache of " + capacity);
        }
    }

    private void allocate(int layer) {
        if (keys[layer] == null) {
            keys[layer] = zeros(manager, capacity);
            values[layer] = zeros(manager, capacity);
        }
    }

    /** Called once per forward after every layer appended. */
    void advance(int tokens) {
        length += tokens;
    }

    /**
     * A new cache of {@code newCapacity} that starts with a copy of this one's tokens: the fork of a
     * shared prefix (system prompt and image) into one decode per task.
     */
    public KvCache fork(NDManager parent, int newCapacity) {
        if (newCapacity < length) {
            throw new IllegalArgumentException("a fork needs room for the " + length + " cached tokens");
        }
        KvCache copy = new KvCache(parent, keys.length, kvHeads, headDim, newCapacity, dataType);
        NDIndex prefix = new NDIndex(":, :{}, :", length);
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] == null) {
                continue;
            }
            copy.keys[i] = copy.zeros(copy.manager, newCapacity);
            copy.values[i] = copy.zeros(copy.manager, newCapacity);
            copy.keys[i].set(prefix, keys[i].get(copy.manager, prefix));
            copy.values[i].set(prefix, values[i].get(copy.manager, prefix));
        }
        copy.length = length;
        return copy;
    }

    /** [kvHeads, rows, d] zeros; BF16 through the bridge (DJL cannot make BF16 arrays). */
    private NDArray zeros(NDManager owner, int rows) {
        if (dataType == DataType.BFLOAT16) {
            return Aten.zeros(owner, new long[] {kvHeads, rows, headDim}, DType.BF16);
        }
        return owner.zeros(new Shape(kvHeads, rows, headDim), dataType);
    }

    @Override
    public void close() {
        manager.close();
    }
}

package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.TensorInfo;
import io.monostream.torch.DType;
import io.monostream.torch.Device;
import io.monostream.torch.Dispatcher;
import io.monostream.torch.Tensor;

/**
 * Turns checkpoint tensors into resident arrays of the model's precision, owned by one manager
 * (the model's). Each tensor is read from the file straight into libtorch memory (positional
 * reads, not through the mapping, and never through the Java heap) and cast once when the file
 * stores another element type; linear weights may then be prepacked and the plain copy dropped.
 * On CUDA each tensor is read on the host and copied once to the device (no prepacking there).
 * The checkpoint has already checked every shape against the config.
 */
final class WeightLoader {
    private final Checkpoint checkpoint;
    private final NDManager manager;
    private final Precision precision;
    private final boolean prepack;
    private final Device device;
    private final java.util.Map<DType, Long> residentBytes = new java.util.EnumMap<>(DType.class);

    /** {@code manager} allocates on the device the weights go to. */
    WeightLoader(Checkpoint checkpoint, NDManager manager, Precision precision, boolean prepack) {
        this.checkpoint = checkpoint;
        this.manager = manager;
        this.device = Device.of(manager.getDevice());
        this.precision = precision;
        this.prepack = prepack;
    }

    /** A resident array of the model's precision. */
    NDArray load(String name) {
        NDArray array;
        try (Tensor t = tensor(name)) {
            array = t.toNDArray(manager);
        }
        count(precision.dtype(), checkpoint.info(name).elementCount());
        array.setName(name);
        return array;
    }

    /** The tensor widened to fp32, for one-off work at load time (e.g. resizing a table). */
    float[] floats(String name) {
        return checkpoint.readFloats(name);
    }

    /** A linear layer of the model's precision; bias may be null. */
    Projection linear(String weight, String bias) {
        try (Tensor w = tensor(weight); Tensor b = bias == null ? null : tensor(bias)) {
            count(w.dtype(), w.numel());
            if (b != null) {
                count(b.dtype(), b.numel());
            }
            return Projection.of(w, b, prepack, manager);
        }
    }

    /** A new tensor of the model's precision on the model's device holding one copy of the checkpoint tensor. */
    private Tensor tensor(String name) {
        Tensor host = hostTensor(name);
        if (device.type() == Device.Type.CPU) {
            return host;
        }
        try (host) {
            return host.to(device);
        }
    }

    /**
     * The checkpoint tensor in the model's precision in host memory, read straight into native
     * memory (a stored dtype other than the model's goes through one temporary tensor of it), so
     * that loading never holds a weight on the Java heap.
     */
    private Tensor hostTensor(String name) {
        TensorInfo info = checkpoint.info(name);
        long[] shape = info.shape();
        DType stored = switch (info.dtype()) {
            case F32 -> DType.F32;
            case BF16 -> DType.BF16;
            case F16 -> DType.F16;
        };
        Tensor raw = Tensor.empty(shape, stored, Device.CPU);
        checkpoint.readInto(name, raw.dataPointer().reinterpret(info.byteLength()));
        if (stored == precision.dtype()) {
            return raw;
        }
        try (raw) {
            Tensor t = Tensor.empty(shape, precision.dtype(), Device.CPU);
            Dispatcher.callInPlace("aten::copy_", "", t, raw, false); // exact widening, or rounding to nearest even
            return t;
        }
    }

    /** Records a resident weight made outside this loader (e.g. a resized table). */
    void count(DType dtype, long elements) {
        residentBytes.merge(dtype, elements * dtype.byteSize(), Long::sum);
    }

    /** Bytes of the resident weights loaded so far, per element type. */
    java.util.Map<DType, Long> residentBytes() {
        return java.util.Map.copyOf(residentBytes);
    }

    Precision precision() {
        return precision;
    }

    NDManager manager() {
        return manager;
    }
}

package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.TensorInfo;
import io.monostream.torch.DType;
import io.monostream.torch.Device;
import io.monostream.torch.HugePages;
import io.monostream.torch.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Turns checkpoint tensors into resident arrays of the model's precision, owned by one manager
 * (the model's). In BF16 the bytes of a BF16 checkpoint are copied once from the mapping into
 * libtorch memory (never widened; the mapping may be closed afterwards) and F32/F16 checkpoints
 * are cast once; linear weights are then prepacked and the plain copy dropped.
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
        if (precision == Precision.F32) {
            array = manager.create(checkpoint.readFloats(name), new Shape(checkpoint.info(name).shape()));
        } else {
            try (Tensor t = tensor(name)) {
                array = t.toNDArray(manager);
            }
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

    /** The checkpoint tensor in the model's precision in host memory. */
    private Tensor hostTensor(String name) {
        TensorInfo info = checkpoint.info(name);
        long[] shape = info.shape();
        if (precision == Precision.F32) {
            float[] values = checkpoint.readFloats(name);
            Tensor t = Tensor.empty(shape, DType.F32, Device.CPU);
            HugePages.advise(t.dataPointer()); // before the first write: the pages are made huge
            MemorySegment.copy(values, 0, t.dataPointer(), ValueLayout.JAVA_FLOAT, 0, values.length);
            return t;
        }
        if (info.dtype() == io.monostream.checkpoint.DType.BF16) {
            Tensor t = Tensor.empty(shape, DType.BF16, Device.CPU);
            HugePages.advise(t.dataPointer());
            checkpoint.readInto(name, t.dataPointer().reinterpret(info.byteLength()));
            return t;
        }
        try (Tensor wide = Tensor.of(checkpoint.readFloats(name), shape)) {
            return wide.to(DType.BF16);
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

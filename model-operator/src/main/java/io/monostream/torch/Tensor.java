package io.monostream.torch;

import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One libtorch tensor handle ({@code AtenTensorHandle}, an {@code at::Tensor*}) owned by Java.
 *
 * <p>Each {@code Tensor} owns exactly one handle and deletes it in {@link #close()}; several
 * handles may share one storage (libtorch reference-counts it). Closing twice is harmless.
 * Using a closed tensor throws {@link IllegalStateException}. {@link #liveHandles()} counts the
 * handles currently owned by open tensors, so tests can prove that nothing leaks.
 *
 * <pre>{@code
 * try (Tensor w = Tensor.fromSegment(mapped.asSlice(off, bytes), DType.BF16, new long[] {n, k});
 *      Tensor y = Dispatcher.call("aten::linear", "", x, w, null)) {
 *     ...
 * }
 * }</pre>
 *
 * <p>Not thread-safe for concurrent close; reading from several threads is fine.
 */
public final class Tensor implements AutoCloseable {

    private static final AtomicLong LIVE = new AtomicLong();
    private static final VarHandle CLOSED;

    static {
        try {
            CLOSED = MethodHandles.lookup().findVarHandle(Tensor.class, "closed", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MemorySegment handle;
    @SuppressWarnings("unused") // accessed through CLOSED
    private volatile boolean closed;

    private Tensor(MemorySegment handle) {
        if (handle.address() == 0) {
            throw new TorchException("libtorch returned a null tensor handle");
        }
        this.handle = handle;
        LIVE.incrementAndGet();
    }

    /** Takes ownership of a handle that nobody else will delete. */
    static Tensor adopt(MemorySegment handle) {
        return new Tensor(handle);
    }

    /**
     * A tensor sharing storage with DJL's {@code array}. The two own separate handles: closing
     * either leaves the other valid.
     */
    public static Tensor wrap(PtNDArray array) {
        TorchBridge torch = TorchBridge.get();
        return new Tensor(torch.newHandle(MemorySegment.ofAddress(array.getHandle())));
    }

    /**
     * A DJL array sharing storage with this tensor, attached to {@code manager} (which must be a
     * PyTorch manager) and closed with it. Do not call DJL's own dtype-dependent methods on a
     * BF16 array: DJL's native BF16 path aborts the JVM; pass it back through {@link #wrap}.
     */
    public PtNDArray toNDArray(NDManager manager) {
        if (!(manager instanceof PtNDManager pt)) {
            throw new IllegalArgumentException("a PyTorch NDManager is needed, got " + manager.getClass());
        }
        MemorySegment copy = TorchBridge.get().newHandle(live());
        return new PtNDArray(pt, copy.address());
    }

    /**
     * A CPU tensor over {@code data} without copying, contiguous in row-major order: for weights
     * memory-mapped from a checkpoint.
     *
     * <p>Lifetime: libtorch does not own {@code data}. The segment (its arena, or the mapping)
     * must stay alive as long as this tensor and every tensor or view that shares its storage
     * (views from ops, {@link #toNDArray} copies, handles passed to {@link Dispatcher} that an op
     * may keep). Writing to a read-only mapping through the tensor crashes the process.
     */
    public static Tensor fromSegment(MemorySegment data, DType dtype, long[] shape) {
        long numel = numel(shape);
        if (data.byteSize() < numel * dtype.byteSize()) {
            throw new IllegalArgumentException("segment of " + data.byteSize() + " bytes is too small for "
                    + Arrays.toString(shape) + " " + dtype);
        }
        if (!data.isNative()) {
            throw new IllegalArgumentException("the segment must be native (off-heap or mapped) memory");
        }
        if (data.address() % dtype.byteSize() != 0) {
            throw new IllegalArgumentException("segment address is not aligned to " + dtype.byteSize() + " bytes");
        }
        return new Tensor(TorchBridge.get().fromBlob(data, shape, contiguousStrides(shape), dtype, Device.CPU));
    }

    /** An uninitialised contiguous tensor allocated by libtorch. */
    public static Tensor empty(long[] shape, DType dtype, Device device) {
        if (device.type() == Device.Type.CUDA) {
            TorchBridge.get().requireCuda(device); // a clear message instead of libtorch's backend list
        }
        return new Tensor(TorchBridge.get().emptyStrided(shape, contiguousStrides(shape), dtype, device));
    }

    /** A contiguous F32 CPU tensor holding a copy of {@code values}. */
    public static Tensor of(float[] values, long... shape) {
        if (numel(shape) != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill " + Arrays.toString(shape));
        }
        return ofSlice(values, 0, shape);
    }

    /** A contiguous F32 CPU tensor holding a copy of {@code values[from, from + numel(shape))}. */
    public static Tensor ofSlice(float[] values, int from, long... shape) {
        long n = numel(shape);
        if (from < 0 || from + n > values.length) {
            throw new IllegalArgumentException(Arrays.toString(shape) + " from " + from + " runs past " + values.length + " values");
        }
        Tensor t = empty(shape, DType.F32, Device.CPU);
        MemorySegment.copy(values, from, t.dataPointer(), ValueLayout.JAVA_FLOAT, 0, (int) n);
        return t;
    }

    /** A contiguous I64 CPU tensor holding a copy of {@code values} (indices). */
    public static Tensor ofLongs(long[] values, long... shape) {
        if (numel(shape) != values.length) {
            throw new IllegalArgumentException(values.length + " values do not fill " + Arrays.toString(shape));
        }
        Tensor t = empty(shape, DType.I64, Device.CPU);
        MemorySegment.copy(values, 0, t.dataPointer(), ValueLayout.JAVA_LONG, 0, values.length);
        return t;
    }

    /**
     * The element data. On the CPU the segment spans the tensor's elements from its first one
     * (numel × element size; for non-contiguous tensors read through {@link #strides()}). For a
     * CUDA tensor it is a zero-length segment carrying the device address, for kernels.
     */
    public MemorySegment dataPointer() {
        MemorySegment h = live();
        TorchBridge torch = TorchBridge.get();
        MemorySegment p = MemorySegment.ofAddress(torch.dataAddress(h));
        if (torch.device(h).type() != Device.Type.CPU) {
            return p;
        }
        return p.reinterpret(numel() * dtype().byteSize());
    }

    /** Sizes per dimension. */
    public long[] shape() {
        return TorchBridge.get().sizes(live());
    }

    /** Strides per dimension, in elements. */
    public long[] strides() {
        return TorchBridge.get().strides(live());
    }

    /** Number of elements. */
    public long numel() {
        return numel(shape());
    }

    /** Element type. */
    public DType dtype() {
        return DType.fromCode(TorchBridge.get().dtype(live()));
    }

    /** Where the data lives. */
    public Device device() {
        return TorchBridge.get().device(live());
    }

    /**
     * libtorch's current CUDA stream on this tensor's device, for launching the project's own
     * kernels in order with libtorch's work; empty for CPU tensors and CPU-only builds.
     */
    public java.util.Optional<MemorySegment> cudaStream() {
        return TorchBridge.get().currentCudaStream(device());
    }

    /** True when the strides are the row-major ones for the shape. */
    public boolean isContiguous() {
        long[] shape = shape();
        long[] strides = strides();
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && strides[i] != expected) {
                return false;
            }
            expected *= shape[i];
        }
        return true;
    }

    /** A new tensor of type {@code dtype} ({@code aten::to.dtype}; a new handle even if equal). */
    public Tensor to(DType dtype) {
        return Dispatcher.call("aten::to", "dtype", this, dtype, false, false, null);
    }

    /**
     * A contiguous copy of this tensor on {@code device} (a new handle to the same tensor when it
     * is already there): how weights read on the host reach the GPU.
     */
    public Tensor to(Device device) {
        if (device.equals(device())) {
            return adopt(newHandle());
        }
        Tensor t = empty(shape(), dtype(), device);
        try {
            t.copyFrom(this);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** Copies {@code src} into this tensor (broadcasting and converting as libtorch does). */
    public void copyFrom(Tensor src) {
        TorchBridge.get().copyInto(live(), src.live());
    }

    /** The elements as F32 values, converted and made contiguous on the CPU as needed. */
    public float[] toFloatArray() {
        if (device().type() != Device.Type.CPU) {
            throw new UnsupportedOperationException("toFloatArray reads CPU tensors only; got " + device());
        }
        if (dtype() == DType.F32 && isContiguous()) {
            return dataPointer().toArray(ValueLayout.JAVA_FLOAT);
        }
        try (Tensor f = Dispatcher.call("aten::_to_copy", "", this, java.util.Optional.of(DType.F32),
                null, null, null, false, java.util.Optional.of(MemoryFormat.CONTIGUOUS))) {
            return f.dataPointer().toArray(ValueLayout.JAVA_FLOAT);
        }
    }

    /** Deletes the handle; the storage goes when its last handle does. Safe to call twice. */
    @Override
    public void close() {
        if (CLOSED.compareAndSet(this, false, true)) {
            LIVE.decrementAndGet();
            TorchBridge.get().deleteHandle(handle);
        }
    }

    /** Whether {@link #close()} has run. */
    public boolean isClosed() {
        return closed;
    }

    /** Handles currently owned by open tensors in this JVM (for leak tests). */
    public static long liveHandles() {
        return LIVE.get();
    }

    /** The owned handle, for borrowing by shims that do not consume it. */
    MemorySegment live() {
        if (closed) {
            throw new IllegalStateException("tensor is closed");
        }
        return handle;
    }

    /** A fresh handle to the same tensor, for a call that consumes handles. */
    MemorySegment newHandle() {
        return TorchBridge.get().newHandle(live());
    }

    @Override
    public String toString() {
        if (closed) {
            return "Tensor[closed]";
        }
        return "Tensor" + Arrays.toString(shape()) + " " + dtype() + " " + device();
    }

    static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            strides[i] = s;
            s *= shape[i];
        }
        return strides;
    }

    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative size in " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}

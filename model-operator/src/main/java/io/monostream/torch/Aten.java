package io.monostream.torch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.pytorch.engine.PtNDArray;
import java.util.Optional;

/**
 * Aten ops on DJL arrays: the arguments are wrapped as {@link Tensor}s for the call, and the
 * result comes back as a DJL array attached to a manager, so the caller's usual NDManager scopes
 * own it. This is how the model reaches ops DJL lacks (SDPA, prepacked linear) and the DJL calls
 * that are unsafe on BF16 arrays.
 *
 * <h2>DJL calls on BF16 arrays</h2>
 * Probed one per child JVM by {@code DjlBf16SafetyTest} (DJL 0.35.1, libtorch 2.7.1):
 * <ul>
 *   <li>Safe: shape, element-wise arithmetic (with arrays or Java scalars), reshape, transpose,
 *       expandDims, broadcast, indexing {@code get}, indexed {@code set}, concat, stack, duplicate,
 *       square, mean, sqrt, sigmoid, gelu, swish, matMul, batchMatMul, Linear, LayerNorm, Conv2d,
 *       embedding, comparisons, {@code toType(FLOAT32)}, attach and close. {@code getDataType()}
 *       returns {@code UNKNOWN} rather than failing.</li>
 *   <li>Abort the JVM: {@code softmax}, {@code zeros}/{@code create} with {@code BFLOAT16},
 *       {@code toType(BFLOAT16)}. Use {@link #cast}, {@link #zeros} or the dispatcher instead.</li>
 *   <li>Throw: {@code toString} and {@code toFloatArray} (DJL cannot read an UNKNOWN type); cast
 *       to F32 first.</li>
 * </ul>
 * In any dtype, {@code NDManager.create} from a Java array leaves its native copy to the garbage
 * collector (a direct buffer the array keeps); the engine creates arrays with {@link #fromFloats}.
 */
public final class Aten {

    private Aten() {
    }

    /**
     * Calls {@code op.overload} like {@link Dispatcher#call}, with {@link NDArray} arguments (also
     * inside {@link Optional}) passed as tensors; the result is attached to {@code manager}.
     */
    public static NDArray call(NDManager manager, String op, String overload, Object... args) {
        Object[] converted = new Object[args.length];
        Tensor[] wrapped = new Tensor[args.length];
        try {
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                if (a instanceof NDArray nd) {
                    wrapped[i] = wrap(nd);
                    converted[i] = wrapped[i];
                } else if (a instanceof Optional<?> o && o.isPresent() && o.get() instanceof NDArray nd) {
                    wrapped[i] = wrap(nd);
                    converted[i] = Optional.of(wrapped[i]);
                } else {
                    converted[i] = a;
                }
            }
            try (Tensor result = Dispatcher.call(op, overload, converted)) {
                return result.toNDArray(manager);
            }
        } finally {
            for (Tensor t : wrapped) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    /** {@code x} converted to {@code dtype} (a new array in x's manager, or x itself when it already is). */
    public static NDArray cast(NDArray x, DType dtype) {
        try (Tensor t = wrap(x)) {
            if (t.dtype() == dtype) {
                return x;
            }
            try (Tensor c = t.to(dtype)) {
                return c.toNDArray(x.getManager());
            }
        }
    }

    /** The element type of {@code x}, read through the bridge (DJL says UNKNOWN for BF16). */
    public static DType dtype(NDArray x) {
        try (Tensor t = wrap(x)) {
            return t.dtype();
        }
    }

    /** A zero-filled array of any dtype, BF16 included, on {@code manager}'s device and attached to it. */
    public static NDArray zeros(NDManager manager, long[] shape, DType dtype) {
        try (Tensor t = Tensor.empty(shape, dtype, Device.of(manager.getDevice()))) {
            Dispatcher.callInPlace("aten::zero_", "", t);
            return t.toNDArray(manager);
        }
    }

    /**
     * An F32 array holding a copy of {@code values[from, from + numel(shape))}, on {@code manager}'s
     * device and attached to it. Use this instead of DJL's {@code NDManager.create}: DJL copies
     * into a direct {@link java.nio.ByteBuffer} that the array keeps, and that native memory stays
     * until the garbage collector finds the buffer, long after the array is closed.
     */
    public static NDArray fromFloatSlice(NDManager manager, float[] values, int from, long... shape) {
        try (Tensor host = Tensor.ofSlice(values, from, shape)) {
            return onDeviceOf(manager, host);
        }
    }

    /** {@link #fromFloatSlice} of all of {@code values}, which must fill {@code shape}. */
    public static NDArray fromFloats(NDManager manager, float[] values, long... shape) {
        try (Tensor host = Tensor.of(values, shape)) {
            return onDeviceOf(manager, host);
        }
    }

    /** A host tensor's copy on {@code manager}'s device (the same storage on the CPU), attached to it. */
    private static NDArray onDeviceOf(NDManager manager, Tensor host) {
        try (Tensor there = host.to(Device.of(manager.getDevice()))) {
            return there.toNDArray(manager);
        }
    }

    /** A tensor sharing {@code x}'s storage; close it after the call. */
    public static Tensor wrap(NDArray x) {
        if (!(x instanceof PtNDArray pt)) {
            throw new IllegalArgumentException("a PyTorch NDArray is needed, got " + x.getClass());
        }
        return Tensor.wrap(pt);
    }
}

package io.monostream.torch;

import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;

/**
 * Calls aten (or registered custom) ops by name through libtorch 2.7's
 * {@code aoti_torch_call_dispatcher}. This class is the one place that knows that call's
 * ownership and boxing rules.
 *
 * <pre>{@code
 * try (Tensor y = Dispatcher.call("aten::scaled_dot_product_attention", "",
 *         q, k, v, null, 0.0, true, Optional.empty(), false)) { ... }
 * }</pre>
 *
 * <h2>Arguments</h2>
 * Every argument of the op's schema must be given, in schema order, defaults included: libtorch
 * reads exactly as many stack slots as the schema has arguments. Each Java value becomes one
 * {@code StableIValue} (a uint64 slot; 2.7 copies a value's bytes into the low end of it):
 * <ul>
 *   <li>{@link Tensor} → a fresh handle made with {@code aoti_torch_new_tensor_handle}. libtorch
 *       takes ownership of (and deletes) every handle on the stack, so the caller's own handle is
 *       never put there.</li>
 *   <li>{@code Long}/{@code Integer} → int; {@code Double}/{@code Float} → float (IEEE bits);
 *       {@code Boolean} → bool; {@link DType} → ScalarType; {@link MemoryFormat}; {@link Device}
 *       → c10::Device (type byte, index byte).</li>
 *   <li>{@code null} or {@code Optional.empty()} → None, for any optional ({@code T?}) argument.</li>
 *   <li>{@code Optional.of(v)} → a present optional: a pointer to a slot holding {@code v},
 *       allocated with C++ {@code operator new} because libtorch frees it with {@code delete}.
 *       <b>A plain value where the schema says {@code T?} crashes the process</b> (libtorch
 *       dereferences it as that pointer), so present optionals must be wrapped.</li>
 * </ul>
 * Scalar, list and string arguments cannot be boxed by the 2.7 ABI and are refused before
 * anything is allocated. The few such ops needed here ({@code aten::add.Tensor}) are routed to
 * libtorch's typed {@code aoti_torch_cpu_*} shims instead; see {@link #call}.
 *
 * <h2>Results</h2>
 * Returned tensors (in-place ops included: they return a new handle to {@code self}) are owned by
 * the caller and must be closed. Only ops whose returns are all (non-optional) tensors are
 * supported.
 *
 * <h2>Failures</h2>
 * A nonzero code becomes a {@link TorchException}. When the op itself fails (bad shapes, out of
 * memory) libtorch has already taken every argument handle, so nothing leaks. When the op name
 * is unknown or an argument's type does not match the schema, libtorch has taken only some of
 * them and does not say which; the rest leak rather than risk a double free. Those are
 * programming errors that the first test run shows.
 */
public final class Dispatcher {

    private static final int STACK_SLOTS = 64;
    /** Zeroed slots kept past the arguments so a missing trailing argument reads None, not junk. */
    private static final int PADDING = 8;
    private static final ThreadLocal<MemorySegment> STACK =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(8L * STACK_SLOTS, 8));

    /** Ops with a Scalar argument, served by typed shims (2.7 cannot box Scalar). */
    private static final Map<String, Function<Object[], Tensor>> TYPED = Map.of(
            "aten::add.Tensor", Dispatcher::addTensor);

    private Dispatcher() {
    }

    /**
     * Calls {@code op.overload} (e.g. {@code "aten::add"}, {@code "Tensor"}; the default overload
     * is {@code ""}) and returns its single tensor result, owned by the caller.
     *
     * <p>{@code aten::add.Tensor(self, other[, alpha])} is served by the typed CPU shim.
     */
    public static Tensor call(String op, String overload, Object... args) {
        Function<Object[], Tensor> typed = TYPED.get(op + "." + overload);
        if (typed != null) {
            return typed.apply(args);
        }
        Tensor[] out = new Tensor[1];
        invoke(op, overload, out, args);
        return out[0];
    }

    /**
     * Calls an in-place op ({@code aten::index_copy_}, {@code aten::normal_}, ...) for its effect
     * on its {@code self} argument, closing the extra handle to {@code self} that 2.7 returns.
     */
    public static void callInPlace(String op, String overload, Object... args) {
        call(op, overload, args).close();
    }

    /** Like {@link #call} for ops returning {@code returns} tensors (a tuple), in order. */
    public static List<Tensor> callMulti(String op, String overload, int returns, Object... args) {
        if (returns < 1) {
            throw new IllegalArgumentException("returns must be >= 1");
        }
        Tensor[] out = new Tensor[returns];
        invoke(op, overload, out, args);
        return List.of(out);
    }

    private static void invoke(String op, String overload, Tensor[] results, Object[] args) {
        String name = overload.isEmpty() ? op : op + "." + overload;
        for (int i = 0; i < args.length; i++) {
            validate(name, i, args[i], false);
        }
        int used = Math.max(args.length, results.length);
        if (used + PADDING > STACK_SLOTS) {
            throw new IllegalArgumentException(name + ": at most " + (STACK_SLOTS - PADDING) + " arguments");
        }
        TorchBridge torch = TorchBridge.get();
        MemorySegment stack = STACK.get();
        stack.asSlice(0, 8L * (used + PADDING)).fill((byte) 0);

        // Copies made here are ours until libtorch sees them: free them if boxing fails midway.
        MemorySegment[] madeHandles = new MemorySegment[args.length];
        int made = 0;
        try {
            for (int i = 0; i < args.length; i++) {
                Object a = args[i];
                if (a instanceof Tensor t) {
                    MemorySegment h = t.newHandle();
                    madeHandles[made++] = h;
                    stack.setAtIndex(JAVA_LONG, i, h.address());
                } else if (a instanceof Optional<?> o && o.isPresent()) {
                    long inner;
                    if (o.get() instanceof Tensor t) {
                        MemorySegment h = t.newHandle();
                        madeHandles[made++] = h;
                        inner = h.address();
                    } else {
                        inner = boxPlain(o.get());
                    }
                    MemorySegment slot = torch.operatorNew(8);
                    slot.set(JAVA_LONG, 0, inner);
                    stack.setAtIndex(JAVA_LONG, i, slot.address());
                } else {
                    stack.setAtIndex(JAVA_LONG, i, boxPlain(a));
                }
            }
        } catch (RuntimeException e) {
            for (int i = 0; i < made; i++) {
                torch.deleteHandle(madeHandles[i]);
            }
            throw e;
        }

        torch.callDispatcher(torch.cString(op), torch.cString(overload), stack, name);

        for (int i = 0; i < results.length; i++) {
            results[i] = Tensor.adopt(MemorySegment.ofAddress(stack.getAtIndex(JAVA_LONG, i)));
        }
    }

    private static void validate(String name, int position, Object a, boolean inOptional) {
        if (a == null || a instanceof Number || a instanceof Boolean || a instanceof DType
                || a instanceof MemoryFormat || a instanceof Device) {
            if (a instanceof Number n && !(n instanceof Long || n instanceof Integer
                    || n instanceof Double || n instanceof Float)) {
                throw unsupported(name, position, a);
            }
            return;
        }
        if (a instanceof Tensor t) {
            t.live(); // throws if closed, before any handle is made
            return;
        }
        if (a instanceof Optional<?> o && !inOptional) {
            if (o.isPresent()) {
                validate(name, position, o.get(), true);
            }
            return;
        }
        throw unsupported(name, position, a);
    }

    private static IllegalArgumentException unsupported(String name, int position, Object a) {
        return new IllegalArgumentException(name + ": argument " + position + " of type "
                + a.getClass().getName() + " cannot be passed through the 2.7 dispatcher ABI"
                + " (Scalar, list and string arguments are not supported; use a typed shim)");
    }

    /** The StableIValue of a non-tensor, non-optional value (null is None). */
    private static long boxPlain(Object a) {
        if (a == null) {
            return 0L;
        }
        if (a instanceof Optional<?> o) {
            return boxPlain(o.orElse(null)); // only empty optionals get here
        }
        if (a instanceof Long l) {
            return l;
        }
        if (a instanceof Integer i) {
            return i.longValue();
        }
        if (a instanceof Double d) {
            return Double.doubleToRawLongBits(d);
        }
        if (a instanceof Float f) {
            return Double.doubleToRawLongBits(f.doubleValue());
        }
        if (a instanceof Boolean b) {
            return b ? 1L : 0L;
        }
        if (a instanceof DType t) {
            return t.code() & 0xFFL;
        }
        if (a instanceof MemoryFormat f) {
            return f.code() & 0xFFL;
        }
        if (a instanceof Device d) {
            TorchBridge torch = TorchBridge.get();
            // c10::Device is {int8 type; int8 index}: type in the low byte, index in the next
            long index = d.type() == Device.Type.CPU ? -1 : d.index();
            return (torch.deviceTypeCode(d) & 0xFFL) | ((index & 0xFFL) << 8);
        }
        throw new IllegalArgumentException("cannot box " + a.getClass().getName());
    }

    private static Tensor addTensor(Object[] args) {
        if (args.length < 2 || args.length > 3 || !(args[0] instanceof Tensor a) || !(args[1] instanceof Tensor b)
                || (args.length == 3 && !(args[2] instanceof Number))) {
            throw new IllegalArgumentException("aten::add.Tensor takes (Tensor self, Tensor other[, Number alpha]), got "
                    + Arrays.toString(args));
        }
        double alpha = args.length == 3 ? ((Number) args[2]).doubleValue() : 1.0;
        if (a.device().type() != Device.Type.CPU) {
            throw new TorchException("aten::add.Tensor has a Scalar argument the 2.7 dispatcher ABI cannot box,"
                    + " and only the CPU typed shim is bound; got " + a.device());
        }
        return Tensor.adopt(TorchBridge.get().cpuAdd(a.live(), b.live(), alpha));
    }
}

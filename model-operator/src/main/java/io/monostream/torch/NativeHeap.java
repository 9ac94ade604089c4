package io.monostream.torch;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Gives the C heap's free memory back to the OS ({@code malloc_trim(0)}, glibc). A prefill frees
 * hundreds of MB of activations that libtorch's threads allocated in several malloc arenas; glibc
 * keeps most of it mapped, so without a trim the process keeps that much more resident memory for
 * the rest of its life. A no-op where the C library has no {@code malloc_trim}.
 */
public final class NativeHeap {
    private static final Once<Optional<MethodHandle>> TRIM = new Once<>(NativeHeap::bind);

    private NativeHeap() {
    }

    private static Optional<MethodHandle> bind() {
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find("malloc_trim")
                .map(a -> linker.downcallHandle(a, FunctionDescriptor.of(JAVA_INT, JAVA_LONG)));
    }

    /** Returns free C heap memory to the OS; whether the C library has the call. */
    public static boolean trim() {
        MethodHandle trim = TRIM.get().orElse(null);
        if (trim == null) {
            return false;
        }
        try {
            int released = (int) trim.invokeExact(0L);
            return released >= 0;
        } catch (Throwable t) {
            throw NativeCalls.unchecked(t, "malloc_trim");
        }
    }
}

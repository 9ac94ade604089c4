package io.monostream.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * Asks Linux for transparent huge pages ({@code madvise(MADV_HUGEPAGE)}) on large, not yet
 * written memory such as the weights: decode streams every weight once per token, and with 4 KiB
 * pages the TLB misses cost 5-30 % of the read rate on the machines we measured (more for a batch
 * of rows). Where transparent huge pages are set to {@code madvise} (a common default) memory gets
 * them only when asked. Only the 2 MiB-aligned interior of a range is advised; a no-op off Linux
 * or when the call fails (the memory then simply keeps small pages).
 */
public final class HugePages {
    private static final long HUGE = 2L << 20;
    private static final int MADV_HUGEPAGE = 14;
    private static final Once<java.util.Optional<MethodHandle>> MADVISE = new Once<>(HugePages::bindMadvise);

    private HugePages() {
    }

    private static java.util.Optional<MethodHandle> bindMadvise() {
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
            return java.util.Optional.empty();
        }
        Linker linker = Linker.nativeLinker();
        return linker.defaultLookup().find("madvise").map(a -> linker.downcallHandle(a,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT)));
    }

    /** Advises the whole 2 MiB pages inside {@code memory}; returns whether any were advised. */
    public static boolean advise(MemorySegment memory) {
        long start = (memory.address() + HUGE - 1) & -HUGE;
        long end = (memory.address() + memory.byteSize()) & -HUGE;
        MethodHandle madvise = MADVISE.get().orElse(null);
        if (madvise == null || end <= start) {
            return false;
        }
        try {
            return (int) madvise.invokeExact(MemorySegment.ofAddress(start), end - start, MADV_HUGEPAGE) == 0;
        } catch (Throwable t) {
            throw NativeCalls.unchecked(t, "madvise");
        }
    }
}

package io.monostream.torch;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/** What every FFM binding of this package does the same way: look a symbol up, and turn what a downcall threw into an unchecked exception. */
final class NativeCalls {
    private NativeCalls() {
    }

    /** A downcall handle to {@code symbol} of {@code library} (named in the error when it is missing). */
    static MethodHandle bind(SymbolLookup library, String libraryName, String symbol, FunctionDescriptor descriptor) {
        MemorySegment address = library.find(symbol)
                .orElseThrow(() -> new TorchException("symbol " + symbol + " missing from " + libraryName));
        return Linker.nativeLinker().downcallHandle(address, descriptor);
    }

    /** {@code t} itself when unchecked (an Error is rethrown), else a TorchException saying which call failed. */
    static RuntimeException unchecked(Throwable t, String what) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new TorchException(what + " failed", t);
    }
}

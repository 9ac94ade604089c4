package io.monostream.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * The decode-sized linear kernel of {@code model-operator/src/main/c} ({@code libmonostream_cpu.so},
 * C ABI in {@code cpu_linear.h}) bound with Java's FFM API: {@code y = x·Wᵀ} for a few rows of
 * {@code x}, with the plain row-major weight streamed once at close to the machine's read
 * bandwidth. libtorch's oneDNN GEMV reaches 55–75 % of that bandwidth here, and decode is made of
 * nothing else; prefill (many rows) stays with libtorch.
 *
 * <pre>{@code
 * Optional<CpuLinearKernel> k = CpuLinearKernel.get();
 * if (k.isPresent() && k.get().handles(x, weight)) {
 *     try (Tensor y = k.get().apply(x, weight)) { ... }
 * }
 * }</pre>
 *
 * <p>The library travels in the jar ({@value #RESOURCE}) and is copied to a temporary file on
 * first use; {@code -D}{@value #LIBRARY_PROPERTY}{@code =FILE} loads another build instead and
 * {@code -D}{@value #DISABLE_PROPERTY}{@code =true} turns the kernel off (every linear then runs
 * through libtorch, for comparison). When it is missing (built without a C compiler, or not on
 * Linux x86-64) the engine says so once and uses libtorch.
 *
 * <p>The kernel keeps its own small thread pool, sized by {@link TorchThreads#configure}.
 */
public final class CpuLinearKernel {
    /** System property naming a library file to load instead of the jar's. */
    public static final String LIBRARY_PROPERTY = "monostream.cpu.library";
    /** System property that turns the kernel off ({@code true}). */
    public static final String DISABLE_PROPERTY = "monostream.cpu.kernel.disabled";
    /** Where the jar carries the library. */
    public static final String RESOURCE = "/native/linux-x86_64/libmonostream_cpu.so";
    /** {@code MS_CPU_LINEAR_ABI_VERSION}. */
    public static final int ABI_VERSION = 1;
    /**
     * The most rows of {@code x} sent to the kernel: up to here it reads the weight once and beats
     * or matches libtorch on plain weights; beyond it the products are compute-bound and oneDNN's
     * GEMM is the better tool.
     */
    public static final int MAX_ROWS = 16;

    private static final int MS_F32 = 0;
    private static final int MS_BF16 = 1;
    private static final System.Logger LOG = System.getLogger(CpuLinearKernel.class.getName());
    private static volatile Availability cached;

    private final Path path;
    private final MethodHandle linear;
    private final MethodHandle setThreads;
    private final MethodHandle preferPortable;
    private final String isa;

    /** The loaded kernel, or empty and why not (one line, for the log). */
    public record Availability(Optional<CpuLinearKernel> kernel, String description) {}

    private CpuLinearKernel(Path path) {
        this.path = path;
        SymbolLookup lib = SymbolLookup.libraryLookup(path, Arena.global());
        Linker linker = Linker.nativeLinker();
        MethodHandle abi = bind(linker, lib, "ms_cpu_linear_abi_version", FunctionDescriptor.of(JAVA_INT));
        MethodHandle isaName = bind(linker, lib, "ms_cpu_linear_isa", FunctionDescriptor.of(ADDRESS));
        linear = bind(linker, lib, "ms_cpu_linear", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
        setThreads = bind(linker, lib, "ms_cpu_linear_set_threads", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        preferPortable = bind(linker, lib, "ms_cpu_linear_prefer_portable", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        try {
            int version = (int) abi.invokeExact();
            if (version != ABI_VERSION) {
                throw new TorchException(path + " has ABI version " + version + ", this build expects " + ABI_VERSION);
            }
            isa = ((MemorySegment) isaName.invokeExact()).reinterpret(64).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The kernel when it loads (once per JVM), else empty; the reason is logged once. */
    public static Optional<CpuLinearKernel> get() {
        return availability().kernel();
    }

    /** The kernel, or why it is not there; looked up once per JVM. */
    public static Availability availability() {
        Availability a = cached;
        if (a == null) {
            synchronized (CpuLinearKernel.class) {
                a = cached;
                if (a == null) {
                    a = find();
                    LOG.log(System.Logger.Level.INFO, "decode linear kernel: {0}", a.description());
                    cached = a;
                }
            }
        }
        return a;
    }

    private static Availability find() {
        if (Boolean.getBoolean(DISABLE_PROPERTY)) {
            return new Availability(Optional.empty(), "off (-D" + DISABLE_PROPERTY + "=true); libtorch runs every linear");
        }
        Path file;
        try {
            file = locate();
        } catch (IOException e) {
            return new Availability(Optional.empty(), "could not unpack " + RESOURCE + ": " + e.getMessage()
                    + "; libtorch runs every linear");
        }
        if (file == null) {
            return new Availability(Optional.empty(), "libmonostream_cpu.so is not in this build (it needs gcc on"
                    + " Linux x86-64 at build time); libtorch runs every linear");
        }
        try {
            CpuLinearKernel k = new CpuLinearKernel(file);
            k.threads(TorchThreads.current());
            return new Availability(Optional.of(k), k.isa + " from " + file);
        } catch (RuntimeException e) {
            return new Availability(Optional.empty(), "could not load " + file + ": " + e.getMessage()
                    + "; libtorch runs every linear");
        }
    }

    /** The named file, else the jar's copy unpacked to a temporary file, else null. */
    private static Path locate() throws IOException {
        String named = System.getProperty(LIBRARY_PROPERTY);
        if (named != null && !named.isBlank()) {
            Path p = Path.of(named);
            if (!Files.isRegularFile(p)) {
                throw new IOException(LIBRARY_PROPERTY + "=" + named + " is not a file");
            }
            return p;
        }
        try (InputStream in = CpuLinearKernel.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                return null;
            }
            Path file = Files.createTempFile("libmonostream_cpu", ".so");
            file.toFile().deleteOnExit();
            Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
            return file;
        }
    }

    /** The instruction set in use: {@code avx512bf16}, {@code avx512f}, {@code avx2} or {@code x86-64}. */
    public String isa() {
        return isa;
    }

    /** The file the library was loaded from. */
    public Path path() {
        return path;
    }

    /** Sets how many threads (the caller included) share one product; the pool is per JVM. */
    public void threads(int n) {
        try {
            int rc = (int) setThreads.invokeExact(n);
            if (rc != 0) {
                throw new TorchException("ms_cpu_linear_set_threads(" + n + ") failed (" + rc + ")");
            }
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Makes BF16 products use the portable vector loop instead of the best one for this CPU (for
     * tests of that loop); returns the previous setting. F32 always uses the portable loop.
     */
    boolean preferPortable(boolean portable) {
        try {
            return (int) preferPortable.invokeExact(portable ? 1 : 0) != 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Whether {@link #apply} takes these operands: CPU, the same dtype (F32 or BF16), contiguous,
     * {@code x} [M, K] with 1 ≤ M ≤ {@value #MAX_ROWS} and {@code weight} [N, K].
     */
    public boolean handles(Tensor x, Tensor weight) {
        long[] xs = x.shape();
        long[] ws = weight.shape();
        DType t = weight.dtype();
        return xs.length == 2 && ws.length == 2 && xs[1] == ws[1] && xs[0] >= 1 && xs[0] <= MAX_ROWS
                && (t == DType.F32 || t == DType.BF16) && x.dtype() == t
                && x.device().type() == Device.Type.CPU && weight.device().type() == Device.Type.CPU
                && x.isContiguous() && weight.isContiguous();
    }

    /** {@code x·weightᵀ} [M, N] in the weight's dtype, fp32 accumulation; see {@link #handles}. */
    public Tensor apply(Tensor x, Tensor weight) {
        if (!handles(x, weight)) {
            throw new IllegalArgumentException("the CPU linear kernel does not take x " + x + " with weight " + weight);
        }
        long m = x.shape()[0];
        long k = x.shape()[1];
        long n = weight.shape()[0];
        Tensor y = Tensor.empty(new long[] {m, n}, weight.dtype(), Device.CPU);
        try {
            int rc = (int) linear.invokeExact(weight.dtype() == DType.BF16 ? MS_BF16 : MS_F32,
                    x.dataPointer(), m, k, weight.dataPointer(), n, y.dataPointer());
            if (rc != 0) {
                throw new TorchException("ms_cpu_linear failed (" + rc + ") for x " + x + ", weight " + weight);
            }
            return y;
        } catch (Throwable t) {
            y.close();
            throw rethrow(t);
        }
    }

    private static MethodHandle bind(Linker linker, SymbolLookup lib, String name, FunctionDescriptor fd) {
        MemorySegment address = lib.find(name)
                .orElseThrow(() -> new TorchException("symbol " + name + " missing from libmonostream_cpu.so"));
        return linker.downcallHandle(address, fd);
    }

    private static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) {
            return r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new TorchException("call into libmonostream_cpu.so failed", t);
    }
}

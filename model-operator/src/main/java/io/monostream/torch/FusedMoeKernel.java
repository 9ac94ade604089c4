package io.monostream.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The fused multimodal-MoE CUDA kernel of {@code cuda/} ({@code libmonostream_moe.so}, C ABI in
 * {@code cuda/include/monostream_moe.h}) bound with Java's FFM API: for every token t,
 * {@code y_t = FFN_{m_t}(x_t)} in one launch per projection over both experts (spec §8).
 *
 * <pre>{@code
 * FusedMoeKernel.Availability a = FusedMoeKernel.availability();
 * if (a.kernel().isPresent()) {
 *     FusedMoeKernel k = a.kernel().get();
 *     RunTable runs = k.buildRunTable(mask);                       // host, once per forward
 *     try (Tensor table = k.upload(runs, device)) {
 *         k.forward(x, y, workspace, weights, runs, table, 0, stream);
 *     }
 * }
 * }</pre>
 *
 * <p>The library is looked up at {@value #LIBRARY_PROPERTY} (system property) or
 * {@code MONOSTREAM_MOE_LIBRARY} (environment), else next to the jar holding this class, else in
 * {@code cuda/build/} of the working directory or one of its parents. It links the CUDA runtime
 * statically, so it loads (and its host functions run) on machines without a GPU.
 */
public final class FusedMoeKernel {
    /** System property naming the library file. */
    public static final String LIBRARY_PROPERTY = "monostream.moe.library";
    /** Environment variable naming the library file. */
    public static final String LIBRARY_ENV = "MONOSTREAM_MOE_LIBRARY";
    /** The ABI this binding was written against ({@code MONOSTREAM_MOE_ABI_VERSION}). */
    public static final int ABI_VERSION = 1;
    /** Rows per CTA tile; run tables are built for it. */
    public static final int TILE_M = 128;
    /** {@code MONOSTREAM_MOE_ADD_TO_OUTPUT}: y += FFN(x) instead of y = FFN(x). */
    public static final int ADD_TO_OUTPUT = 1;

    /** Return codes of the ABI. */
    public static final int OK = 0;
    public static final int ERR_INVALID_ARGUMENT = 1;
    public static final int ERR_UNSUPPORTED_SHAPE = 2;
    public static final int ERR_MISALIGNED = 3;
    public static final int ERR_CAPACITY = 4;
    public static final int ERR_UNSUPPORTED_DEVICE = 5;
    public static final int ERR_CUDA_BASE = 1000;

    private static final String FILE_NAME = System.mapLibraryName("monostream_moe");
    private static final Once<Availability> AVAILABILITY = new Once<>(FusedMoeKernel::find);

    private final Path path;
    private final MethodHandle abiVersion;
    private final MethodHandle errorString;
    private final MethodHandle maxRuns;
    private final MethodHandle buildRunTable;
    private final MethodHandle forward;

    /**
     * The kernel if the library was found and loaded, else why not (one line, for the log).
     *
     * @param kernel the loaded library, or empty
     * @param reason why it is absent, or the file it was loaded from
     */
    public record Availability(Optional<FusedMoeKernel> kernel, String reason) {}

    /**
     * One run of consecutive tokens of one modality, as the ABI's {@code monostream_moe_run}.
     *
     * @param expert 0 = text ({@code feed_forward}), 1 = image ({@code feed_forward_ve})
     * @param tileStart index of the run's first {@link #TILE_M}-row tile (exclusive prefix sum)
     */
    public record Run(int tokenStart, int tokenCount, int expert, int tileStart) {}

    /** A host run table as built by {@code monostream_moe_build_run_table}. */
    public record RunTable(List<Run> runs, int tokens, int mTiles) {
        public RunTable {
            runs = List.copyOf(runs);
        }
    }

    /**
     * One layer's two experts: {@code w1}, {@code w3} [I, H] and {@code w2} [H, I] per expert, BF16,
     * contiguous, on the device the kernel runs on. Index 0 = text, 1 = image.
     */
    public record ExpertWeights(Tensor[] w1, Tensor[] w3, Tensor[] w2) {
        public ExpertWeights {
            if (w1.length != 2 || w3.length != 2 || w2.length != 2) {
                throw new IllegalArgumentException("two experts expected");
            }
        }

        /** H. */
        public long hidden() {
            return w1[0].shape()[1];
        }

        /** I. */
        public long intermediate() {
            return w1[0].shape()[0];
        }
    }

    private FusedMoeKernel(Path path) {
        this.path = path;
        SymbolLookup lib = SymbolLookup.libraryLookup(path, Arena.global());
        abiVersion = bind(lib, "monostream_moe_abi_version", FunctionDescriptor.of(JAVA_INT));
        errorString = bind(lib, "monostream_moe_error_string", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        maxRuns = bind(lib, "monostream_moe_max_runs", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        buildRunTable = bind(lib, "monostream_moe_build_run_table",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        forward = bind(lib, "monostream_moe_forward", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, ADDRESS));
    }

    /** Loads the library at {@code path} and checks its ABI version. */
    public static FusedMoeKernel open(Path path) {
        FusedMoeKernel k = new FusedMoeKernel(path);
        int v = k.abiVersion();
        if (v != ABI_VERSION) {
            throw new TorchException(path + " has ABI version " + v + ", this build expects " + ABI_VERSION);
        }
        return k;
    }

    /** The library found as described in the class comment, loaded once per JVM. */
    public static Availability availability() {
        return AVAILABILITY.get();
    }

    private static Availability find() {
        Optional<Path> file = locate();
        if (file.isEmpty()) {
            return new Availability(Optional.empty(), FILE_NAME + " not found (set " + LIBRARY_ENV + " or -D"
                    + LIBRARY_PROPERTY + ", or build it with make -C cuda)");
        }
        try {
            return new Availability(Optional.of(open(file.get())), "loaded " + file.get());
        } catch (RuntimeException e) {
            return new Availability(Optional.empty(), "could not load " + file.get() + ": " + e.getMessage());
        }
    }

    /** Where the library is, by the order in the class comment; a named path must exist. */
    static Optional<Path> locate() {
        String named = System.getProperty(LIBRARY_PROPERTY, System.getenv(LIBRARY_ENV));
        if (named != null && !named.isBlank()) {
            Path p = Path.of(named);
            return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
        }
        List<Path> candidates = new ArrayList<>();
        try {
            Path jar = Path.of(FusedMoeKernel.class.getProtectionDomain().getCodeSource().getLocation().toURI());
            candidates.add((Files.isDirectory(jar) ? jar : jar.getParent()).resolve(FILE_NAME));
        } catch (Exception e) {
            // no code source (unusual class loader): fall back to the build directory
        }
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            candidates.add(dir.resolve("cuda").resolve("build").resolve(FILE_NAME));
        }
        return candidates.stream().filter(Files::isRegularFile).findFirst();
    }

    /** Null when the kernel handles these shapes, else why not ({@code H % 128}, {@code I % 64}). */
    public static String shapeProblem(long hidden, long intermediate) {
        if (hidden % 128 != 0 || intermediate % 64 != 0) {
            return "hidden " + hidden + " / intermediate " + intermediate
                    + " (the kernel needs hidden % 128 == 0 and intermediate % 64 == 0)";
        }
        return null;
    }

    /** The file the library was loaded from. */
    public Path path() {
        return path;
    }

    public int abiVersion() {
        try {
            return (int) abiVersion.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The library's description of a return code. */
    public String errorString(int code) {
        try {
            MemorySegment s = (MemorySegment) errorString.invokeExact(code);
            return s.reinterpret(Long.MAX_VALUE).getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int maxRuns(int tokens) {
        try {
            return (int) maxRuns.invokeExact(tokens);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The run table of a host modality mask (true = image token). */
    public RunTable buildRunTable(boolean[] visual) {
        int tokens = visual.length;
        int capacity = Math.max(1, maxRuns(tokens));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment mask = arena.allocate(Math.max(1, tokens));
            for (int i = 0; i < tokens; i++) {
                mask.set(JAVA_BYTE, i, visual[i] ? (byte) 1 : 0);
            }
            MemorySegment runs = arena.allocate(16L * capacity, 4);
            MemorySegment counts = arena.allocate(8, 4);
            check("monostream_moe_build_run_table",
                    buildRunTable(mask, tokens, runs, capacity, counts, counts.asSlice(4)));
            int count = counts.get(JAVA_INT, 0);
            List<Run> list = new ArrayList<>(count);
            for (int r = 0; r < count; r++) {
                long o = 16L * r;
                list.add(new Run(runs.get(JAVA_INT, o), runs.get(JAVA_INT, o + 4), runs.get(JAVA_INT, o + 8),
                        runs.get(JAVA_INT, o + 12)));
            }
            return new RunTable(list, tokens, counts.get(JAVA_INT, 4));
        }
    }

    /** The raw ABI call, for tests of its argument checks. */
    int buildRunTable(MemorySegment modality, int tokens, MemorySegment runs, int capacity, MemorySegment runCount,
            MemorySegment mTiles) {
        try {
            return (int) buildRunTable.invokeExact(modality, tokens, runs, capacity, runCount, mTiles);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The run table as an int32 [runs, 4] tensor on {@code device}, for {@link #forward}. */
    public Tensor upload(RunTable table, Device device) {
        int n = Math.max(1, table.runs().size());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(16L * n, 16);
            for (int r = 0; r < table.runs().size(); r++) {
                Run run = table.runs().get(r);
                long o = 16L * r;
                host.set(JAVA_INT, o, run.tokenStart());
                host.set(JAVA_INT, o + 4, run.tokenCount());
                host.set(JAVA_INT, o + 8, run.expert());
                host.set(JAVA_INT, o + 12, run.tileStart());
            }
            long[] shape = {n, 4};
            try (Tensor t = Tensor.fromSegment(host, DType.I32, shape)) {
                Tensor copy = Tensor.empty(shape, DType.I32, device); // a copy: the host segment dies here
                copy.copyFrom(t);
                return copy;
            }
        }
    }

    /**
     * {@code y = FFN_m(x)} (or {@code y += FFN_m(x)} with {@link #ADD_TO_OUTPUT}), asynchronously on
     * {@code stream}. {@code x}, {@code y} [tokens, H] and {@code workspace} [tokens, I] are BF16,
     * contiguous and 16-byte aligned on the device of the weights; {@code runsOnDevice} is
     * {@link #upload} of {@code table}.
     *
     * @throws TorchException with the library's message on any nonzero return code
     */
    public void forward(Tensor x, Tensor y, Tensor workspace, ExpertWeights weights, RunTable table,
            Tensor runsOnDevice, int flags, MemorySegment stream) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment w = arena.allocate(6 * ADDRESS.byteSize(), ADDRESS.byteAlignment());
            for (int e = 0; e < 2; e++) {
                w.setAtIndex(ADDRESS, e, weights.w1()[e].dataPointer());
                w.setAtIndex(ADDRESS, 2 + e, weights.w3()[e].dataPointer());
                w.setAtIndex(ADDRESS, 4 + e, weights.w2()[e].dataPointer());
            }
            int rc;
            try {
                rc = (int) forward.invokeExact(x.dataPointer(), y.dataPointer(), workspace.dataPointer(), w,
                        table.tokens(), (int) weights.hidden(), (int) weights.intermediate(),
                        runsOnDevice.dataPointer(), table.runs().size(), table.mTiles(), flags, stream);
            } catch (Throwable t) {
                throw rethrow(t);
            }
            check("monostream_moe_forward", rc);
        }
    }

    /** The raw ABI call with explicit pointers, for tests of its argument checks. */
    int forward(MemorySegment x, MemorySegment y, MemorySegment workspace, MemorySegment weights, int tokens,
            int hidden, int intermediate, MemorySegment runs, int runCount, int mTiles, int flags,
            MemorySegment stream) {
        try {
            return (int) forward.invokeExact(x, y, workspace, weights, tokens, hidden, intermediate, runs, runCount,
                    mTiles, flags, stream);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    private void check(String function, int rc) {
        if (rc != OK) {
            throw new TorchException(function + " failed (" + rc + "): " + errorString(rc));
        }
    }

    private static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return NativeCalls.bind(lib, FILE_NAME, name, fd);
    }

    private static RuntimeException rethrow(Throwable t) {
        return NativeCalls.unchecked(t, "call into " + FILE_NAME);
    }
}

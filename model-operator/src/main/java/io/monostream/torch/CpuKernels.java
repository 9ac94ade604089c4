package io.monostream.torch;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * The CPU kernels of decode and prefill ({@code libmonostream_cpu.so}, sources and C ABI in
 * {@code model-operator/src/main/c/monostream_cpu.h}) bound with Java's FFM API:
 * <ul>
 *   <li>{@link #linear}: {@code y = x·Wᵀ} for a few rows of {@code x}, the plain row-major weight
 *       streamed once at close to the machine's read bandwidth (libtorch's oneDNN GEMV reaches
 *       55–75 % of it here, and decode is mostly these products); {@link #gatedLinear} fuses an
 *       expert's SwiGLU gate {@code silu(x·W1ᵀ) ⊙ x·W3ᵀ} into one pass;</li>
 *   <li>{@link #rmsNorm} and {@link #attendDecode} (rotary embedding, KV-cache write and attention
 *       of one new token): one call each instead of the eight to a dozen small libtorch ops whose
 *       fixed costs dominated decode;</li>
 *   <li>for prefill, {@link #attentionInputs} (rotary embedding and cache write of every new token)
 *       and, in BF16 on AVX-512 CPUs, {@link #attentionPrefill} (causal flash attention after any
 *       cached prefix);</li>
 *   <li>{@code ms_cpu_decode_step}: a whole decode step in one call, through {@link CpuDecoder}.</li>
 * </ul>
 * {@link #linear} (with or without a bias) and {@link #gatedLinear} also take prefill's many rows,
 * in F32 and BF16 on AVX-512 CPUs ({@link #takesManyRows}), through a register-blocked product over
 * the same plain weight ({@code gemm.c}) that runs 10–30 % faster than libtorch's oneDNN GEMM on
 * CPUs with AVX512-BF16 and no AMX; on AVX-512 CPUs without AVX512-BF16 it widens BF16 operands
 * to fp32 and runs 3–4× faster than libtorch's BF16 matmul there. On CPUs with AMX-BF16 tiles,
 * BF16 products of many rows go to libtorch, whose oneDNN multiplies on the tiles several times
 * faster ({@link #keepsPlainWeights}). Other prefill ops stay with libtorch.
 *
 * <pre>{@code
 * Optional<CpuKernels> k = CpuKernels.get();
 * if (k.isPresent() && k.get().handlesLinear(x, weight)) {
 *     try (Tensor y = k.get().linear(x, weight)) { ... }
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
public final class CpuKernels {
    /** System property naming a library file to load instead of the jar's. */
    public static final String LIBRARY_PROPERTY = "monostream.cpu.library";
    /**
     * System property choosing where BF16 products of many rows go: {@code libtorch} or
     * {@code kernels}; by default libtorch on CPUs with AMX-BF16 and the kernels elsewhere.
     */
    public static final String BF16_PREFILL_PROPERTY = "monostream.cpu.bf16.prefill";
    /** System property that turns the kernel off ({@code true}). */
    public static final String DISABLE_PROPERTY = "monostream.cpu.kernel.disabled";
    /** Where the jar carries the library. */
    public static final String RESOURCE = "/native/linux-x86_64/libmonostream_cpu.so";
    /** {@code MS_CPU_ABI_VERSION}. */
    public static final int ABI_VERSION = 7;
    /**
     * The most rows of {@code x} that {@link #linear} streams the weight for (reading it once, at
     * or beyond libtorch's speed on plain weights), and the most sequences of a decode step. More
     * rows are compute-bound: {@link #linear} takes them through its blocked product where
     * {@link #takesManyRows}, and libtorch otherwise.
     */
    public static final int MAX_ROWS = 16;

    /** The largest head dimension {@link #attendDecode} takes ({@code MS_CPU_MAX_HEAD_DIM} in monostream_cpu.h). */
    public static final int MAX_HEAD_DIM = 512;

    private static final int MS_F32 = 0;
    private static final int MS_BF16 = 1;
    private static final Logger LOG = LoggerFactory.getLogger(CpuKernels.class);
    private static final Once<Availability> AVAILABILITY = new Once<>(CpuKernels::lookUp);

    private final Path path;
    private final MethodHandle linear;
    private final MethodHandle linearBias;
    private final MethodHandle gatedLinear;
    private final MethodHandle rmsNorm;
    private final MethodHandle attentionDecode;
    private final MethodHandle attentionInputs;
    private final MethodHandle attentionPrefill;
    private final MethodHandle decodeStep;
    private final MethodHandle setThreads;
    private final MethodHandle preferPortable;
    private final MethodHandle preferWide;
    private final String isa;
    private final boolean avx512; // the blocked product's vector instructions
    private final boolean amxBf16;
    // BF16 products of many rows go to libtorch: on AMX-BF16 CPUs, where oneDNN multiplies on the
    // tiles, or when a test asks (bf16ManyRowsThroughLibtorch)
    private volatile boolean bf16ManyRowsToLibtorch;

    /** The loaded kernel, or empty and why not (one line, for the log). */
    public record Availability(Optional<CpuKernels> kernel, String description) {}

    private CpuKernels(Path path) {
        this.path = path;
        SymbolLookup lib = SymbolLookup.libraryLookup(path, Arena.global());
        MethodHandle abi = bind(lib, "ms_cpu_abi_version", FunctionDescriptor.of(JAVA_INT));
        MethodHandle isaName = bind(lib, "ms_cpu_isa", FunctionDescriptor.of(ADDRESS));
        MethodHandle amx = bind(lib, "ms_cpu_has_amx_bf16", FunctionDescriptor.of(JAVA_INT));
        linear = bind(lib, "ms_cpu_linear", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS));
        linearBias = bind(lib, "ms_cpu_linear_bias", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        gatedLinear = bind(lib, "ms_cpu_gated_linear", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        rmsNorm = bind(lib, "ms_cpu_rms_norm", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS, JAVA_FLOAT, ADDRESS));
        attentionDecode = bind(lib, "ms_cpu_attention_decode", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG,
                JAVA_LONG, ADDRESS));
        attentionInputs = bind(lib, "ms_cpu_attention_inputs", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, ADDRESS));
        attentionPrefill = bind(lib, "ms_cpu_attention_prefill", FunctionDescriptor.of(JAVA_INT,
                JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG,
                ADDRESS));
        decodeStep = bind(lib, "ms_cpu_decode_step", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_LONG,
                ADDRESS));
        setThreads = bind(lib, "ms_cpu_set_threads", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        preferPortable = bind(lib, "ms_cpu_prefer_portable", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        preferWide = bind(lib, "ms_cpu_prefer_wide", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        try {
            int version = (int) abi.invokeExact();
            if (version != ABI_VERSION) {
                throw new TorchException(path + " has ABI version " + version + ", this build expects " + ABI_VERSION);
            }
            isa = ((MemorySegment) isaName.invokeExact()).reinterpret(64).getString(0);
            avx512 = "avx512bf16".equals(isa) || "avx512f".equals(isa);
            amxBf16 = (int) amx.invokeExact() != 0;
            String route = System.getProperty(BF16_PREFILL_PROPERTY, "");
            bf16ManyRowsToLibtorch = switch (route) {
                case "libtorch" -> true;
                case "kernels" -> false;
                case "" -> amxBf16;
                default -> throw new TorchException("-D" + BF16_PREFILL_PROPERTY + "=" + route
                        + ": expected libtorch or kernels");
            };
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The kernel when it loads (once per JVM), else empty; the reason is logged once. */
    public static Optional<CpuKernels> get() {
        return availability().kernel();
    }

    /** The kernel, or why it is not there; looked up once per JVM. */
    public static Availability availability() {
        return AVAILABILITY.get();
    }

    /** {@link #find}, logged once. */
    private static Availability lookUp() {
        Availability a = find();
        LOG.info("CPU kernels: {}", a.description());
        return a;
    }

    private static Availability find() {
        if (Boolean.getBoolean(DISABLE_PROPERTY)) {
            return new Availability(Optional.empty(), "off (-D" + DISABLE_PROPERTY + "=true); libtorch runs the decode path");
        }
        Path file;
        try {
            file = locate();
        } catch (IOException e) {
            return new Availability(Optional.empty(), "could not unpack " + RESOURCE + ": " + e.getMessage()
                    + "; libtorch runs the decode path");
        }
        if (file == null) {
            return new Availability(Optional.empty(), "libmonostream_cpu.so is not in this build (it needs gcc on"
                    + " Linux x86-64 at build time); libtorch runs the decode path");
        }
        try {
            CpuKernels k = new CpuKernels(file);
            k.threads(TorchThreads.current());
            return new Availability(Optional.of(k), k.isa + " from " + file + (!k.bf16ManyRowsToLibtorch ? ""
                    : k.amxBf16 ? "; BF16 prefill products through libtorch's oneDNN on AMX-BF16"
                    : "; BF16 prefill products through libtorch (-D" + BF16_PREFILL_PROPERTY + ")"));
        } catch (RuntimeException e) {
            return new Availability(Optional.empty(), "could not load " + file + ": " + e.getMessage()
                    + "; libtorch runs the decode path");
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
        try (InputStream in = CpuKernels.class.getResourceAsStream(RESOURCE)) {
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
                throw new TorchException("ms_cpu_set_threads(" + n + ") failed (" + rc + ")");
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
     * Makes BF16 products and prefill attention widen their operands to fp32, as they do on AVX-512
     * CPUs without AVX512-BF16, even where the CPU has it, for the whole process (so tests cover
     * those kernels on any AVX-512 CPU); returns the previous setting.
     */
    public boolean preferWide(boolean wide) {
        try {
            return (int) preferWide.invokeExact(wide ? 1 : 0) != 0;
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * Whether {@link #linear} takes these operands: CPU, one dtype (F32 or BF16), contiguous,
     * {@code x} [M, K] and {@code weight} [N, K], with 1 ≤ M ≤ {@value #MAX_ROWS}, or any M ≥ 1
     * when {@link #takesManyRows} the weight.
     */
    public boolean handlesLinear(Tensor x, Tensor weight) {
        long[] xs = x.shape();
        long[] ws = weight.shape();
        return xs.length == 2 && ws.length == 2 && xs[1] == ws[1] && xs[0] >= 1
                && (xs[0] <= MAX_ROWS || takesManyRows(weight)) && sameKind(weight, x);
    }

    /**
     * Whether products with this weight take any number of rows (prefill), and a bias: F32, or BF16
     * with an even K, on a CPU with AVX-512, where the library's blocked product beats libtorch's
     * oneDNN (BF16 and prepacked F32 alike; BF16 widened to fp32 on CPUs without AVX512-BF16) —
     * except BF16 on CPUs with AMX-BF16, whose tiles oneDNN multiplies on several times faster.
     */
    public boolean takesManyRows(Tensor weight) {
        long[] ws = weight.shape();
        return ws.length == 2 && takesManyRows(weight.dtype()) && (weight.dtype() != DType.BF16 || ws[1] % 2 == 0);
    }

    /** Whether products of this dtype take many rows on this CPU (BF16 needs an even K besides). */
    public boolean takesManyRows(DType dtype) {
        return switch (dtype) {
            case BF16 -> avx512 && !bf16ManyRowsToLibtorch;
            case F32 -> avx512;
            default -> false;
        };
    }

    /**
     * Whether linear weights of this dtype are best kept plain rather than prepacked for oneDNN:
     * where {@link #takesManyRows(DType)}, and for BF16 products of many rows that go to libtorch
     * on AMX-BF16 CPUs (oneDNN multiplies plain BF16 weights on the tiles at 1.2–1.9 TFLOP/s on two
     * cores, near its prepacked 2.0, while decode keeps streaming them through this library).
     */
    public boolean keepsPlainWeights(DType dtype) {
        return takesManyRows(dtype) || (dtype == DType.BF16 && bf16ManyRowsToLibtorch);
    }

    /** Whether the CPU has AMX-BF16 tiles that the OS enables ({@code ms_cpu_has_amx_bf16}). */
    public boolean hasAmxBf16() {
        return amxBf16;
    }

    /**
     * Sends BF16 products of many rows to libtorch (as on AMX-BF16 CPUs) or takes them (as
     * elsewhere), for the whole process; returns the previous setting. For tests of the route
     * AMX-BF16 CPUs take, and for comparisons.
     */
    public boolean bf16ManyRowsThroughLibtorch(boolean libtorch) {
        boolean before = bf16ManyRowsToLibtorch;
        bf16ManyRowsToLibtorch = libtorch;
        return before;
    }

    /** {@code x·weightᵀ} [M, N] in the weight's dtype, fp32 accumulation; see {@link #handlesLinear}. */
    public Tensor linear(Tensor x, Tensor weight) {
        if (!handlesLinear(x, weight)) {
            throw new IllegalArgumentException("the CPU linear kernel does not take x " + x + " with weight " + weight);
        }
        long[] xs = x.shape();
        long n = weight.shape()[0];
        return produce(new long[] {xs[0], n}, weight.dtype(), y -> (int) linear.invokeExact(code(weight),
                x.dataPointer(), xs[0], xs[1], weight.dataPointer(), n, y.dataPointer()), "ms_cpu_linear");
    }

    /**
     * Whether {@link #linear(Tensor, Tensor, Tensor)} takes these operands: without a bias (null)
     * as {@link #handlesLinear(Tensor, Tensor)}; with one, {@code bias} [N] of the weight's dtype,
     * contiguous, on the CPU, and a weight that {@link #takesManyRows} (any M ≥ 1).
     */
    public boolean handlesLinear(Tensor x, Tensor weight, Tensor bias) {
        if (bias == null) {
            return handlesLinear(x, weight);
        }
        long[] ws = weight.shape();
        return takesManyRows(weight) && handlesLinear(x, weight)
                && java.util.Arrays.equals(bias.shape(), new long[] {ws[0]}) && sameKind(weight, bias);
    }

    /**
     * {@code x·weightᵀ + bias} [M, N] rounded once, as libtorch's linear rounds it, or
     * {@link #linear(Tensor, Tensor)} when {@code bias} is null; see
     * {@link #handlesLinear(Tensor, Tensor, Tensor)}.
     */
    public Tensor linear(Tensor x, Tensor weight, Tensor bias) {
        if (bias == null) {
            return linear(x, weight);
        }
        if (!handlesLinear(x, weight, bias)) {
            throw new IllegalArgumentException("the CPU linear kernel does not take x " + x + " with weight " + weight
                    + " and bias " + bias);
        }
        long[] xs = x.shape();
        long n = weight.shape()[0];
        return produce(new long[] {xs[0], n}, weight.dtype(), y -> (int) linearBias.invokeExact(code(weight),
                x.dataPointer(), xs[0], xs[1], weight.dataPointer(), bias.dataPointer(), n, y.dataPointer()),
                "ms_cpu_linear_bias");
    }

    /**
     * {@code silu(x·w1ᵀ) ⊙ (x·w3ᵀ)} [M, N], an FFN expert's gate, with BF16 rounded after each
     * product, the silu and the product as three libtorch ops would; operands as {@link #linear}.
     */
    public Tensor gatedLinear(Tensor x, Tensor w1, Tensor w3) {
        if (!handlesLinear(x, w1) || !java.util.Arrays.equals(w1.shape(), w3.shape()) || !sameKind(w1, w3)) {
            throw new IllegalArgumentException("the CPU gated linear kernel does not take x " + x + " with w1 " + w1
                    + ", w3 " + w3);
        }
        long[] xs = x.shape();
        long n = w1.shape()[0];
        return produce(new long[] {xs[0], n}, w1.dtype(), y -> (int) gatedLinear.invokeExact(code(w1),
                x.dataPointer(), xs[0], xs[1], w1.dataPointer(), w3.dataPointer(), n, y.dataPointer()),
                "ms_cpu_gated_linear");
    }

    /** Whether {@link #rmsNorm} takes these: CPU, one dtype, contiguous, x [..., H], weight [H]. */
    public boolean handlesRmsNorm(Tensor x, Tensor weight) {
        long[] xs = x.shape();
        long[] ws = weight.shape();
        return xs.length >= 1 && ws.length == 1 && xs[xs.length - 1] == ws[0] && x.numel() > 0 && sameKind(weight, x);
    }

    /**
     * RMSNorm over the last axis (spec §6): {@code w · round(x / sqrt(mean(x²) + eps))} with the
     * statistics and scaling in fp32; a new tensor of x's shape.
     */
    public Tensor rmsNorm(Tensor x, Tensor weight, double eps) {
        if (!handlesRmsNorm(x, weight)) {
            throw new IllegalArgumentException("the CPU RMSNorm kernel does not take x " + x + " with weight " + weight);
        }
        long hidden = weight.shape()[0];
        return produce(x.shape(), x.dtype(), y -> (int) rmsNorm.invokeExact(code(x), x.dataPointer(),
                x.numel() / hidden, hidden, weight.dataPointer(), (float) eps, y.dataPointer()), "ms_cpu_rms_norm");
    }

    /**
     * One new token of one sequence through attention (spec §6): rotates its query and key heads,
     * writes its key and value into row {@code past} of the caches and returns
     * {@code softmax(q·Kᵀ/√d)·V} over rows 0..past of every query head, [1, kvHeads · group · d].
     *
     * @param qkv the token's wqkv output [1, kvHeads, group + 2, d] (query heads, K, V per KV head)
     * @param cos the rotary table at the token's position, [1, d] (sin likewise)
     * @param keys the KV head keys [kvHeads, capacity, d] (values likewise)
     */
    public Tensor attendDecode(Tensor qkv, Tensor cos, Tensor sin, Tensor keys, Tensor values, int past) {
        long[] q = qkv.shape();
        long[] k = keys.shape();
        if (q.length != 4 || q[0] != 1 || q[3] > MAX_HEAD_DIM || k.length != 3 || k[0] != q[1] || k[2] != q[3]
                || !java.util.Arrays.equals(k, values.shape()) || cos.numel() != q[3] || sin.numel() != q[3]
                || past < 0 || past >= k[1] || !sameKind(qkv, keys) || !sameKind(qkv, values)
                || !sameKind(qkv, cos) || !sameKind(qkv, sin)) {
            throw new IllegalArgumentException("the CPU attention kernel does not take qkv " + qkv + ", cos " + cos
                    + ", caches " + keys + " / " + values + " at position " + past);
        }
        long kvHeads = q[1];
        long group = q[2] - 2;
        long d = q[3];
        return produce(new long[] {1, kvHeads * group * d}, qkv.dtype(), y -> (int) attentionDecode.invokeExact(
                code(qkv), qkv.dataPointer(), kvHeads, group, d, cos.dataPointer(), sin.dataPointer(),
                keys.dataPointer(), values.dataPointer(), k[1], (long) past, y.dataPointer()), "ms_cpu_attention_decode");
    }

    /**
     * The attention inputs of {@code L} new tokens of one sequence (a prompt or a chunk), for
     * libtorch's attention to take from there: rotates their query and key heads, writes the keys
     * and values into rows {@code past .. past + L - 1} of the caches and returns the rotated
     * queries head after head, [kvHeads · group, L, d]; the roundings of {@link #attendDecode}.
     *
     * @param qkv the tokens' wqkv output [L, kvHeads, group + 2, d]
     * @param cos the rotary tables at positions past .. past + L - 1, [L, d] (sin likewise)
     * @param keys the KV head keys [kvHeads, capacity, d] (values likewise)
     */
    public Tensor attentionInputs(Tensor qkv, Tensor cos, Tensor sin, Tensor keys, Tensor values, int past) {
        long[] q = qkv.shape();
        long[] k = keys.shape();
        if (q.length != 4 || q[3] > MAX_HEAD_DIM || q[3] % 2 != 0 || k.length != 3 || k[0] != q[1] || k[2] != q[3]
                || !java.util.Arrays.equals(k, values.shape()) || !java.util.Arrays.equals(cos.shape(), new long[] {q[0], q[3]})
                || !java.util.Arrays.equals(sin.shape(), cos.shape()) || past < 0 || past + q[0] > k[1]
                || !sameKind(qkv, keys) || !sameKind(qkv, values) || !sameKind(qkv, cos) || !sameKind(qkv, sin)) {
            throw new IllegalArgumentException("the CPU attention inputs kernel does not take qkv " + qkv + ", cos " + cos
                    + ", caches " + keys + " / " + values + " at position " + past);
        }
        long length = q[0];
        long kvHeads = q[1];
        long group = q[2] - 2;
        long d = q[3];
        return produce(new long[] {kvHeads * group, length, d}, qkv.dtype(), y -> (int) attentionInputs.invokeExact(
                code(qkv), qkv.dataPointer(), length, kvHeads, group, d, cos.dataPointer(), sin.dataPointer(),
                keys.dataPointer(), values.dataPointer(), k[1], (long) past, y.dataPointer()), "ms_cpu_attention_inputs");
    }

    /**
     * Whether {@link #attentionPrefill} takes these: BF16 on a CPU with AVX-512 (operands widened
     * to fp32 where it lacks AVX512-BF16), contiguous,
     * q [heads, L, d] with d a multiple of 16 up to {@value #MAX_HEAD_DIM}, caches [kvHeads, capacity, d]
     * with kvHeads dividing heads and room for {@code past + L} rows.
     */
    public boolean handlesAttentionPrefill(Tensor q, Tensor keys, Tensor values, int past) {
        long[] qs = q.shape();
        long[] ks = keys.shape();
        return ("avx512bf16".equals(isa) || "avx512f".equals(isa)) && q.dtype() == DType.BF16 && qs.length == 3
                && ks.length == 3
                && qs[2] % 16 == 0 && qs[2] <= MAX_HEAD_DIM && ks[2] == qs[2] && ks[0] >= 1 && qs[0] % ks[0] == 0
                && java.util.Arrays.equals(ks, values.shape()) && past >= 0 && past + qs[1] <= ks[1]
                && sameKind(q, keys) && sameKind(q, values);
    }

    /**
     * Causal attention of {@code L} new tokens after {@code past} cached ones (a prompt, or a chunk
     * of one): every query attends to the keys up to its own position, in fp32 with the
     * probabilities rounded to BF16 for the product with V, as libtorch's BF16 flash attention.
     *
     * @param q the rotated queries [heads, L, d] ({@link #attentionInputs})
     * @param keys the KV head keys [kvHeads, capacity, d] holding rows 0 .. past + L - 1 (values likewise)
     * @return [L, heads · d], query after query
     */
    public Tensor attentionPrefill(Tensor q, Tensor keys, Tensor values, int past) {
        if (!handlesAttentionPrefill(q, keys, values, past)) {
            throw new IllegalArgumentException("the CPU prefill attention kernel does not take q " + q + ", caches "
                    + keys + " / " + values + " after " + past + " tokens on " + isa);
        }
        long[] qs = q.shape();
        long[] ks = keys.shape();
        return produce(new long[] {qs[1], qs[0] * qs[2]}, DType.BF16, y -> (int) attentionPrefill.invokeExact(
                MS_BF16, q.dataPointer(), qs[1], ks[0], qs[0] / ks[0], qs[2], keys.dataPointer(), values.dataPointer(),
                ks[1], (long) past, y.dataPointer()), "ms_cpu_attention_prefill");
    }

    /**
     * {@code ms_cpu_decode_step} over structures {@link CpuDecoder} laid out; fails with the ABI's code.
     */
    void decodeStep(MemorySegment model, MemorySegment sequences, long m, MemorySegment logits) {
        int rc;
        try {
            rc = (int) decodeStep.invokeExact(model, sequences, m, logits);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (rc != 0) {
            throw new TorchException("ms_cpu_decode_step failed (" + rc + (rc == 3 ? ", out of memory" : "")
                    + ") for " + m + " sequences");
        }
    }

    /** A native call that fills {@code y} and returns the ABI's code. */
    @FunctionalInterface
    private interface Fill {
        int into(Tensor y) throws Throwable;
    }

    /** Allocates y, lets {@code fill} write it, and returns it; frees it on any failure. */
    private static Tensor produce(long[] shape, DType dtype, Fill fill, String function) {
        Tensor y = Tensor.empty(shape, dtype, Device.CPU);
        try {
            int rc = fill.into(y);
            if (rc != 0) {
                throw new TorchException(function + " failed (" + rc + ") for an output " + y);
            }
            return y;
        } catch (Throwable t) {
            y.close();
            throw rethrow(t);
        }
    }

    /** Same F32 or BF16 dtype, on the CPU, contiguous. */
    static boolean sameKind(Tensor reference, Tensor t) {
        DType d = reference.dtype();
        return (d == DType.F32 || d == DType.BF16) && t.dtype() == d && reference.device().type() == Device.Type.CPU
                && t.device().type() == Device.Type.CPU && reference.isContiguous() && t.isContiguous();
    }

    static int code(Tensor t) {
        return t.dtype() == DType.BF16 ? MS_BF16 : MS_F32;
    }

    private static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return NativeCalls.bind(lib, "libmonostream_cpu.so", name, fd);
    }

    private static RuntimeException rethrow(Throwable t) {
        return NativeCalls.unchecked(t, "call into libmonostream_cpu.so");
    }
}

package io.monostream.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.LibUtils;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The libtorch C shim ({@code aoti_torch_*}) reached with Java's FFM API, one per JVM.
 *
 * <p>DJL loads libtorch; this class looks up the same, already loaded {@code libtorch_cpu}
 * (and {@code libtorch_cuda} when the CUDA flavour is in use) and binds method handles to the
 * shim functions. Every call that returns an {@code AOTITorchError} is checked: a nonzero code
 * becomes a {@link TorchException} naming the function.
 *
 * <p>Most callers use {@link Tensor}, {@link Dispatcher} and {@link PackedLinear}; this class
 * is public for the few things that are not about one tensor:
 * <pre>{@code
 * TorchBridge torch = TorchBridge.get();          // initialises DJL's PyTorch engine first
 * Optional<MemorySegment> s = torch.currentCudaStream(Device.cuda(0)); // empty on CPU builds
 * }</pre>
 *
 * <p>Handles ({@code AtenTensorHandle}) are heap-allocated {@code at::Tensor*}, the same thing
 * DJL's {@code PtNDArray.getHandle()} holds, so the two can be exchanged.
 */
public final class TorchBridge {

    private static final Once<TorchBridge> INSTANCE = new Once<>(TorchBridge::load);

    /** Out-parameters of one shim call; never shared across threads, never held across calls. */
    private static final ThreadLocal<MemorySegment> OUT =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(64, 8));

    private final Path libraryDir;
    private final Map<DType, Integer> dtypeCodes = new EnumMap<>(DType.class);
    private final Map<MemoryFormat, Integer> memoryFormatCodes = new EnumMap<>(MemoryFormat.class);
    private final int deviceTypeCpu;
    private final int deviceTypeCuda;
    private final boolean cudaLibrary;
    private final Map<String, MemorySegment> cStrings = new ConcurrentHashMap<>();

    private final MethodHandle createTensorFromBlob;
    private final MethodHandle emptyStrided;
    private final MethodHandle deleteTensorObject;
    private final MethodHandle newTensorHandle;
    private final MethodHandle getDataPtr;
    private final MethodHandle getDim;
    private final MethodHandle getSizes;
    private final MethodHandle getStrides;
    private final MethodHandle getDtype;
    private final MethodHandle getDeviceType;
    private final MethodHandle getDeviceIndex;
    private final MethodHandle copy;
    private final MethodHandle callDispatcher;
    private final MethodHandle operatorNew;
    private final MethodHandle cpuAddTensor;
    private final MethodHandle cpuMulTensor;
    private final MethodHandle cpuLinearPointwise;
    private final Optional<MethodHandle> currentCudaStream;

    private TorchBridge(Path libraryDir) {
        this.libraryDir = libraryDir;
        Linker linker = Linker.nativeLinker();
        Path cpuPath = libraryDir.resolve(System.mapLibraryName("torch_cpu"));
        if (!Files.isRegularFile(cpuPath)) {
            throw new TorchException("libtorch_cpu not found next to DJL's libtorch in " + libraryDir);
        }
        // dlopen of an already loaded library returns DJL's copy; the global arena keeps it open.
        SymbolLookup cpu = SymbolLookup.libraryLookup(cpuPath, Arena.global());
        Path cudaPath = libraryDir.resolve(System.mapLibraryName("torch_cuda"));
        SymbolLookup cuda = Files.isRegularFile(cudaPath)
                ? SymbolLookup.libraryLookup(cudaPath, Arena.global())
                : name -> Optional.empty();
        this.cudaLibrary = Files.isRegularFile(cudaPath);
        Binder b = new Binder(linker, cpu);

        MethodHandle intGetter;
        for (DType t : DType.values()) {
            intGetter = b.fast("aoti_torch_dtype_" + t.torchName(), FunctionDescriptor.of(JAVA_INT));
            dtypeCodes.put(t, invokeInt(intGetter));
        }
        for (MemoryFormat f : MemoryFormat.values()) {
            intGetter = b.fast("aoti_torch_memory_format_" + f.torchName(), FunctionDescriptor.of(JAVA_INT));
            memoryFormatCodes.put(f, invokeInt(intGetter));
        }
        deviceTypeCpu = invokeInt(b.fast("aoti_torch_device_type_cpu", FunctionDescriptor.of(JAVA_INT)));
        deviceTypeCuda = invokeInt(b.fast("aoti_torch_device_type_cuda", FunctionDescriptor.of(JAVA_INT)));

        createTensorFromBlob = b.call("aoti_torch_create_tensor_from_blob", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        emptyStrided = b.call("aoti_torch_empty_strided", FunctionDescriptor.of(JAVA_INT,
                JAVA_LONG, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        deleteTensorObject = b.call("aoti_torch_delete_tensor_object", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        newTensorHandle = b.fast("aoti_torch_new_tensor_handle", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDataPtr = b.fast("aoti_torch_get_data_ptr", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDim = b.fast("aoti_torch_get_dim", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getSizes = b.fast("aoti_torch_get_sizes", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getStrides = b.fast("aoti_torch_get_strides", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDtype = b.fast("aoti_torch_get_dtype", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDeviceType = b.fast("aoti_torch_get_device_type", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        getDeviceIndex = b.fast("aoti_torch_get_device_index", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        copy = b.call("aoti_torch_copy_", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        callDispatcher = b.call("aoti_torch_call_dispatcher",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        // Optional arguments on the dispatcher stack are pointers that libtorch frees with C++
        // delete, so they must come from C++ operator new (dlsym on libtorch also searches libstdc++).
        operatorNew = b.call("_Znwm", FunctionDescriptor.of(ADDRESS, JAVA_LONG));
        cpuAddTensor = b.call("aoti_torch_cpu_add_Tensor",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_DOUBLE, ADDRESS));
        cpuMulTensor = b.call("aoti_torch_cpu_mul_Tensor",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        cpuLinearPointwise = b.call("aoti_torch_cpu__linear_pointwise", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS));
        currentCudaStream = cuda.find("aoti_torch_get_current_cuda_stream").map(addr -> linker.downcallHandle(
                addr, FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS)));
    }

    /** The bridge, loading DJL's PyTorch engine (and so libtorch) on first use. */
    public static TorchBridge get() {
        return INSTANCE.get();
    }

    private static TorchBridge load() {
        try {
            Engine.getEngine("PyTorch"); // makes DJL extract and load libtorch
        } catch (RuntimeException e) {
            throw new TorchException("DJL's PyTorch engine could not be initialised", e);
        }
        return new TorchBridge(Path.of(LibUtils.getLibtorchPath()));
    }

    /** Directory of the libtorch that DJL loaded. */
    public Path libraryDir() {
        return libraryDir;
    }

    /** True when the loaded libtorch is a CUDA build and DJL sees at least one GPU. */
    public boolean hasCuda() {
        return cudaLibrary && Engine.getEngine("PyTorch").getGpuCount() > 0;
    }

    void requireCuda(Device d) {
        if (!cudaLibrary) {
            throw new TorchException("device " + d + " asked for, but DJL loaded a CPU-only libtorch from "
                    + libraryDir + ": give DJL a CUDA libtorch 2.7.1 (PYTORCH_LIBRARY_PATH=<libtorch>/lib with"
                    + " PYTORCH_FLAVOR=cu128, or PYTORCH_FLAVOR=cu128 with network access and without"
                    + " -Dai.djl.offline=true) on a machine with an NVIDIA driver (README, \"GPU\")");
        }
        int gpus = Engine.getEngine("PyTorch").getGpuCount();
        if (d.index() >= gpus) {
            throw new TorchException("device " + d + " asked for, but DJL's CUDA libtorch sees " + gpus
                    + " GPU(s): check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES");
        }
    }

    /**
     * The current CUDA stream ({@code cudaStream_t}) of {@code device}, for launching the project's
     * own kernels on the stream libtorch uses. Empty on CPU builds and for the CPU device.
     */
    public Optional<MemorySegment> currentCudaStream(Device device) {
        if (device.type() != Device.Type.CUDA || currentCudaStream.isEmpty()) {
            return Optional.empty();
        }
        MemorySegment out = OUT.get();
        MethodHandle get = currentCudaStream.get();
        invoke("aoti_torch_get_current_cuda_stream", () -> (int) get.invokeExact(device.index(), out));
        return Optional.of(out.get(ADDRESS, 0));
    }

    // ---- codes ---------------------------------------------------------------------------

    int dtypeCode(DType t) {
        return dtypeCodes.get(t);
    }

    DType dtypeOf(int code) {
        for (Map.Entry<DType, Integer> e : dtypeCodes.entrySet()) {
            if (e.getValue() == code) {
                return e.getKey();
            }
        }
        throw new TorchException("libtorch dtype code " + code + " has no DType here");
    }

    int memoryFormatCode(MemoryFormat f) {
        return memoryFormatCodes.get(f);
    }

    int deviceTypeCode(Device d) {
        return d.type() == Device.Type.CPU ? deviceTypeCpu : deviceTypeCuda;
    }

    int deviceIndexCode(Device d) {
        return d.type() == Device.Type.CPU ? 0 : d.index();
    }

    Device deviceOf(int typeCode, int index) {
        if (typeCode == deviceTypeCpu) {
            return Device.CPU;
        }
        if (typeCode == deviceTypeCuda) {
            return Device.cuda(Math.max(index, 0));
        }
        throw new TorchException("libtorch device type " + typeCode + " is not supported here");
    }

    /** A NUL-terminated copy of {@code s} that lives as long as the JVM (op names: a small set). */
    MemorySegment cString(String s) {
        return cStrings.computeIfAbsent(s, Arena.global()::allocateFrom);
    }

    // ---- handle calls --------------------------------------------------------------------

    MemorySegment newHandle(MemorySegment handle) {
        MemorySegment out = OUT.get();
        invoke("aoti_torch_new_tensor_handle", () -> (int) newTensorHandle.invokeExact(handle, out));
        return out.get(ADDRESS, 0);
    }

    void deleteHandle(MemorySegment handle) {
        invoke("aoti_torch_delete_tensor_object", () -> (int) deleteTensorObject.invokeExact(handle));
    }

    long dataAddress(MemorySegment handle) {
        MemorySegment out = OUT.get();
        invoke("aoti_torch_get_data_ptr", () -> (int) getDataPtr.invokeExact(handle, out));
        return out.get(JAVA_LONG, 0);
    }

    long[] sizes(MemorySegment handle) {
        return dims(handle, getSizes, "aoti_torch_get_sizes");
    }

    long[] strides(MemorySegment handle) {
        return dims(handle, getStrides, "aoti_torch_get_strides");
    }

    private long[] dims(MemorySegment handle, MethodHandle getter, String name) {
        MemorySegment out = OUT.get();
        invoke("aoti_torch_get_dim", () -> (int) getDim.invokeExact(handle, out));
        int ndim = (int) out.get(JAVA_LONG, 0);
        invoke(name, () -> (int) getter.invokeExact(handle, out));
        // borrowed pointer into the tensor's own metadata: copy it out at once
        return out.get(ADDRESS, 0).reinterpret(8L * ndim).toArray(JAVA_LONG);
    }

    int dtype(MemorySegment handle) {
        return intProperty(handle, getDtype, "aoti_torch_get_dtype");
    }

    Device device(MemorySegment handle) {
        int type = intProperty(handle, getDeviceType, "aoti_torch_get_device_type");
        int index = intProperty(handle, getDeviceIndex, "aoti_torch_get_device_index");
        return deviceOf(type, index);
    }

    private int intProperty(MemorySegment handle, MethodHandle getter, String name) {
        MemorySegment out = OUT.get();
        invoke(name, () -> (int) getter.invokeExact(handle, out));
        return out.get(JAVA_INT, 0);
    }

    MemorySegment fromBlob(MemorySegment data, long[] sizes, long[] strides, DType dtype, Device device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocateFrom(JAVA_LONG, sizes);
            MemorySegment st = arena.allocateFrom(JAVA_LONG, strides);
            MemorySegment out = arena.allocate(ADDRESS);
            check("aoti_torch_create_tensor_from_blob", (int) createTensorFromBlob.invokeExact(
                    data, (long) sizes.length, s, st, 0L, dtypeCode(dtype),
                    deviceTypeCode(device), deviceIndexCode(device), out));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    MemorySegment emptyStrided(long[] sizes, long[] strides, DType dtype, Device device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocateFrom(JAVA_LONG, sizes);
            MemorySegment st = arena.allocateFrom(JAVA_LONG, strides);
            MemorySegment out = arena.allocate(ADDRESS);
            check("aoti_torch_empty_strided", (int) emptyStrided.invokeExact(
                    (long) sizes.length, s, st, dtypeCode(dtype),
                    deviceTypeCode(device), deviceIndexCode(device), out));
            return out.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    void copyInto(MemorySegment dst, MemorySegment src) {
        invoke("aoti_torch_copy_", () -> (int) copy.invokeExact(dst, src, 0));
    }

    /**
     * {@code aoti_torch_call_dispatcher}. The stack's tensor handles are consumed by libtorch;
     * see {@link Dispatcher} for the rules.
     */
    void callDispatcher(MemorySegment op, MemorySegment overload, MemorySegment stack, String name) {
        int code;
        try {
            code = (int) callDispatcher.invokeExact(op, overload, stack);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (code != 0) {
            throw new TorchException("aoti_torch_call_dispatcher(" + name + ") failed with code " + code
                    + " (libtorch wrote the C++ exception message to stderr)");
        }
    }

    /** C++ {@code operator new(size)}: memory that libtorch may release with {@code delete}. */
    MemorySegment operatorNew(long size) {
        try {
            return ((MemorySegment) operatorNew.invokeExact(size)).reinterpret(size);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---- typed CPU shims (ops whose schema the 2.7 dispatcher ABI cannot box) -------------

    MemorySegment cpuAdd(MemorySegment a, MemorySegment b, double alpha) {
        MemorySegment out = OUT.get();
        invoke("aoti_torch_cpu_add_Tensor", () -> (int) cpuAddTensor.invokeExact(a, b, alpha, out));
        return out.get(ADDRESS, 0);
    }

    MemorySegment cpuMul(MemorySegment a, MemorySegment b) {
        MemorySegment out = OUT.get();
        invoke("aoti_torch_cpu_mul_Tensor", () -> (int) cpuMulTensor.invokeExact(a, b, out));
        return out.get(ADDRESS, 0);
    }

    /**
     * {@code mkldnn::_linear_pointwise(x, w, bias, "none", [], None)}; {@code biasSlot} is a
     * pointer to a handle, or NULL for no bias. Inputs are borrowed, not consumed.
     */
    MemorySegment cpuLinearPointwise(MemorySegment x, MemorySegment w, MemorySegment biasSlot) {
        MemorySegment out = OUT.get();
        MemorySegment none = cString("none");
        invoke("aoti_torch_cpu__linear_pointwise", () -> (int) cpuLinearPointwise.invokeExact(
                x, w, biasSlot, none, MemorySegment.NULL, 0L, MemorySegment.NULL, out));
        return out.get(ADDRESS, 0);
    }

    // ---- plumbing ------------------------------------------------------------------------

    /** A native call that returns libtorch's error code. */
    @FunctionalInterface
    interface NativeCall {
        int call() throws Throwable;
    }

    /** Runs a native call and turns a nonzero code or a failure into a TorchException naming the function. */
    static void invoke(String function, NativeCall call) {
        int code;
        try {
            code = call.call();
        } catch (Throwable t) {
            throw rethrow(t);
        }
        check(function, code);
    }

    static void check(String function, int code) {
        if (code != 0) {
            throw TorchException.failed(function, code);
        }
    }

    private static RuntimeException rethrow(Throwable t) {
        return NativeCalls.unchecked(t, "native call");
    }

    private static int invokeInt(MethodHandle h) {
        try {
            return (int) h.invokeExact();
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Looks up symbols and binds them; "fast" ones are short, non-blocking getters. */
    private record Binder(Linker linker, SymbolLookup lookup) {
        MethodHandle call(String name, FunctionDescriptor fd) {
            return linker.downcallHandle(find(name), fd);
        }

        MethodHandle fast(String name, FunctionDescriptor fd) {
            // critical: no thread-state transition; fine for calls that only read tensor metadata
            return linker.downcallHandle(find(name), fd, Linker.Option.critical(false));
        }

        private MemorySegment find(String name) {
            return lookup.find(name).orElseThrow(() ->
                    new TorchException("symbol " + name + " not found in libtorch_cpu"));
        }
    }
}

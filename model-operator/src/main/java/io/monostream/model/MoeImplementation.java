package io.monostream.model;

import ai.djl.ndarray.NDArray;
import io.monostream.torch.Aten;
import io.monostream.torch.DType;
import io.monostream.torch.Device;
import io.monostream.torch.FusedMoeKernel;
import io.monostream.torch.Tensor;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.MemorySegment;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which implementation of the multimodal MoE a model runs (spec §8), decided once at load:
 * the fused CUDA kernel of {@code cuda/} when the model is on CUDA in BF16, the library loads and
 * the shapes meet the kernel's constraints; otherwise the partitioned implementation. Each
 * distinct choice is logged once per JVM with its reason.
 *
 * <p>For the kernel it also holds the run table of the current forward on the device: built on
 * the host from the modality mask and copied once, then used by every layer.
 */
public final class MoeImplementation implements AutoCloseable {
    /** Implementation names, as logged and as {@link #name()} returns them. */
    public static final String FUSED = "fused-cuda";
    public static final String PARTITIONED = "partitioned";

    private static final Logger LOG = LoggerFactory.getLogger(MoeImplementation.class);
    private static final Set<String> LOGGED = ConcurrentHashMap.newKeySet();

    private final Optional<FusedMoeKernel> kernel;
    private final Device device;
    private final String reason;
    private ModalityRuns tableRuns;             // the mask the device table was built from
    private FusedMoeKernel.RunTable table;
    private Tensor tableOnDevice;

    private MoeImplementation(Optional<FusedMoeKernel> kernel, Device device, String reason) {
        this.kernel = kernel;
        this.device = device;
        this.reason = reason;
    }

    /** Decides for a model on {@code device} in {@code precision} with these FFN shapes, and logs it once. */
    static MoeImplementation choose(Device device, Precision precision, long hidden, long intermediate) {
        MoeImplementation choice = decide(device, precision, hidden, intermediate);
        String line = "multimodal MoE: " + choice.name() + " (" + choice.reason + ")";
        if (LOGGED.add(line)) {
            LOG.info(line);
        }
        return choice;
    }

    private static MoeImplementation decide(Device device, Precision precision, long hidden, long intermediate) {
        if (device.type() != Device.Type.CUDA) {
            return partitioned(device, "the model runs on " + device + "; the fused kernel is CUDA only");
        }
        if (precision != Precision.BF16) {
            return partitioned(device, "the fused kernel is BF16 only, the model runs in " + precision);
        }
        String shape = FusedMoeKernel.shapeProblem(hidden, intermediate);
        if (shape != null) {
            return partitioned(device, shape);
        }
        FusedMoeKernel.Availability a = FusedMoeKernel.availability();
        if (a.kernel().isEmpty()) {
            return partitioned(device, a.reason());
        }
        return new MoeImplementation(a.kernel(), device, a.reason() + ", " + device + ", BF16, hidden " + hidden
                + ", intermediate " + intermediate);
    }

    private static MoeImplementation partitioned(Device device, String reason) {
        return new MoeImplementation(Optional.empty(), device, reason);
    }

    /** {@value #FUSED} or {@value #PARTITIONED}. */
    public String name() {
        return kernel.isPresent() ? FUSED : PARTITIONED;
    }

    /** Why this implementation was chosen. */
    public String reason() {
        return reason;
    }

    Optional<FusedMoeKernel> kernel() {
        return kernel;
    }

    Device device() {
        return device;
    }

    /**
     * {@code FFN_m(x)} through the kernel, or null when {@code x} is not a contiguous, 16-byte
     * aligned BF16 matrix on the model's device (the caller then runs the partitioned way).
     *
     * @param x [L, H] BF16 on the model's device; @return [L, H] BF16 in x's manager
     */
    synchronized NDArray forward(NDArray x, ModalityRuns runs, FusedMoeKernel.ExpertWeights weights) {
        FusedMoeKernel k = kernel.orElseThrow();
        try (Tensor xt = Aten.wrap(x)) {
            String unusable = unusable(xt);
            if (unusable != null) {
                if (LOGGED.add("multimodal MoE input " + unusable)) {
                    LOG.warn("multimodal MoE: partitioned for an input that is {}", unusable);
                }
                return null;
            }
            Tensor runsOnDevice = runTableOnDevice(runs);
            long tokens = xt.shape()[0];
            MemorySegment stream = xt.cudaStream().orElseThrow();
            try (Tensor y = Tensor.empty(new long[] {tokens, weights.hidden()}, DType.BF16, device);
                    Tensor act = Tensor.empty(new long[] {tokens, weights.intermediate()}, DType.BF16, device)) {
                k.forward(xt, y, act, weights, table, runsOnDevice, 0, stream);
                return y.toNDArray(x.getManager());
            }
        }
    }

    private String unusable(Tensor x) {
        if (x.dtype() != DType.BF16 || !x.device().equals(device)) {
            return x.dtype() + " on " + x.device();
        }
        if (x.shape().length != 2 || !x.isContiguous()) {
            return "not a contiguous matrix";
        }
        if (x.dataPointer().address() % 16 != 0) {
            return "not 16-byte aligned";
        }
        return null;
    }

    /** The device run table of {@code runs}, rebuilt only when the mask changes (once per forward). */
    private Tensor runTableOnDevice(ModalityRuns runs) {
        if (runs != tableRuns) {
            boolean[] visual = new boolean[runs.length()];
            for (ModalityRuns.Run run : runs.runs()) {
                java.util.Arrays.fill(visual, run.start(), run.end(), run.visual());
            }
            FusedMoeKernel.RunTable built = kernel.orElseThrow().buildRunTable(visual);
            Tensor uploaded = kernel.get().upload(built, device);
            if (tableOnDevice != null) {
                // freeing is stream-ordered in libtorch's allocator: queued launches still see the old table
                tableOnDevice.close();
            }
            tableRuns = runs;
            table = built;
            tableOnDevice = uploaded;
        }
        return tableOnDevice;
    }

    @Override
    public synchronized void close() {
        if (tableOnDevice != null) {
            tableOnDevice.close();
            tableOnDevice = null;
        }
    }
}

package io.monostream.torch;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A linear layer {@code y = x·Wᵀ + b} whose weight [N, K] is reordered once, at load time, into
 * oneDNN's blocked layout, then applied with {@code mkldnn::_linear_pointwise}: on this CPU that
 * is about 2 TFLOP/s for BF16 prefill and twice as fast as unpacked weights in decode
 * (dependencies.md).
 *
 * <pre>{@code
 * try (PackedLinear wq = PackedLinear.of(weightBf16, null)) {  // weight may be closed afterwards
 *     try (Tensor y = wq.apply(x)) { ... }
 * }
 * }</pre>
 *
 * <p>Prepacking applies to CPU tensors in BF16 or F32. When it is not available (CUDA, other
 * dtypes, or a libtorch without oneDNN) the layer keeps its own handle to the original weight
 * and runs {@code aten::linear}; that is logged once per JVM.
 */
public final class PackedLinear implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(PackedLinear.class);
    private static final AtomicBoolean FALLBACK_LOGGED = new AtomicBoolean();
    private static final Once<Boolean> PREPACK_WORKS = new Once<>(PackedLinear::probe);
    /** Per dtype: null when prepacked products agree with aten::linear on this CPU, else why not. */
    private static final Once<java.util.Map<DType, String>> PREPACK_WRONG = new Once<>(PackedLinear::checkProducts);
    /** Output widths of the check: 457 and 48 come out wrong in F32 on some AVX-512 CPUs (oneDNN in libtorch 2.7.1). */
    private static final long[] CHECKED_WIDTHS = {48, 457};

    private final Tensor weight;   // packed, or the plain weight on the fallback path
    private final Tensor bias;     // may be null
    private final boolean packed;
    private final long outFeatures;
    private final long inFeatures;

    private PackedLinear(Tensor weight, Tensor bias, boolean packed, long outFeatures, long inFeatures) {
        this.weight = weight;
        this.bias = bias;
        this.packed = packed;
        this.outFeatures = outFeatures;
        this.inFeatures = inFeatures;
    }

    /**
     * Prepacks {@code weight} [N, K] (and keeps a handle to {@code bias} [N], which may be null).
     * The caller still owns and closes its own {@code weight} and {@code bias}.
     */
    public static PackedLinear of(Tensor weight, Tensor bias) {
        long[] shape = weight.shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException("weight must be [out, in], got " + weight);
        }
        Tensor biasRef = bias == null ? null : Tensor.adopt(bias.newHandle());
        String why = whyNotPrepackable(weight);
        if (why == null) {
            try {
                Tensor packedWeight = Dispatcher.call("mkldnn::_reorder_linear_weight", "", weight, null);
                return new PackedLinear(packedWeight, biasRef, true, shape[0], shape[1]);
            } catch (TorchException e) {
                why = "mkldnn::_reorder_linear_weight failed: " + e.getMessage();
            }
        }
        if (FALLBACK_LOGGED.compareAndSet(false, true)) {
            LOG.info("linear weights are not prepacked ({}); using aten::linear", why);
        }
        return new PackedLinear(Tensor.adopt(weight.newHandle()), biasRef, false, shape[0], shape[1]);
    }

    /** Whether the weight is held in the prepacked layout. */
    public boolean isPrepacked() {
        return packed;
    }

    /**
     * A new handle to the plain weight [N, K] (the caller closes it), or empty when the weight is
     * held prepacked: for kernels that read weights by pointer, such as {@link FusedMoeKernel}.
     */
    public Optional<Tensor> plainWeight() {
        return packed ? Optional.empty() : Optional.of(Tensor.adopt(weight.newHandle()));
    }

    /** N, the number of output features. */
    public long outFeatures() {
        return outFeatures;
    }

    /** K, the number of input features. */
    public long inFeatures() {
        return inFeatures;
    }

    /** {@code x·Wᵀ + b} for {@code x} of shape [..., K], same dtype as the weight. */
    public Tensor apply(Tensor x) {
        if (!packed) {
            return Dispatcher.call("aten::linear", "", x, weight, bias == null ? null : Optional.of(bias));
        }
        TorchBridge torch = TorchBridge.get();
        if (bias == null) {
            return Tensor.adopt(torch.cpuLinearPointwise(x.live(), weight.live(), MemorySegment.NULL));
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment slot = arena.allocate(ValueLayout.ADDRESS);
            slot.set(ValueLayout.ADDRESS, 0, bias.live());
            return Tensor.adopt(torch.cpuLinearPointwise(x.live(), weight.live(), slot));
        }
    }

    @Override
    public void close() {
        weight.close();
        if (bias != null) {
            bias.close();
        }
    }

    /** Null when {@code weight} can be prepacked, else the reason. */
    private static String whyNotPrepackable(Tensor weight) {
        if (weight.device().type() != Device.Type.CPU) {
            return "weights on " + weight.device();
        }
        DType t = weight.dtype();
        if (t != DType.BF16 && t != DType.F32) {
            return "dtype " + t;
        }
        if (!prepackAvailable()) {
            return "mkldnn::_reorder_linear_weight is not available in this libtorch";
        }
        return PREPACK_WRONG.get().get(t);
    }

    /**
     * Checks prepacked products against aten::linear once per dtype, on small products whose
     * output widths are not multiples of 64: on some AVX-512 CPUs (AMD Zen 5 seen here) oneDNN's
     * prepacked F32 product returns wrong sums there, off by as much as the outputs themselves.
     * A dtype that fails is not prepacked (aten::linear runs it), so no layer computes wrong values.
     */
    private static java.util.Map<DType, String> checkProducts() {
        java.util.Map<DType, String> wrong = new java.util.EnumMap<>(DType.class);
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) {
            for (long n : CHECKED_WIDTHS) {
                String why = checkProduct(dtype, 4, 64, n);
                if (why != null) {
                    wrong.put(dtype, why);
                    break;
                }
            }
        }
        return wrong;
    }

    /** Null when the prepacked [m,k]·[n,k]ᵀ agrees with aten::linear in {@code dtype}, else how it differs. */
    private static String checkProduct(DType dtype, long m, long k, long n) {
        float[] xv = new float[(int) (m * k)];
        float[] wv = new float[(int) (n * k)];
        for (int i = 0; i < xv.length; i++) {
            xv[i] = ((i * 37) % 17 - 8) / 8f;   // multiples of 1/8: exact in BF16
        }
        for (int i = 0; i < wv.length; i++) {
            wv[i] = ((i * 53) % 13 - 6) / 8f;
        }
        try (Tensor x32 = Tensor.of(xv, m, k); Tensor w32 = Tensor.of(wv, n, k);
             Tensor x = x32.to(dtype); Tensor w = w32.to(dtype);
             Tensor plain = Dispatcher.call("aten::linear", "", x, w, null);
             PackedLinear layer = new PackedLinear(Dispatcher.call("mkldnn::_reorder_linear_weight", "", w, null),
                     null, true, n, k);
             Tensor packed = layer.apply(x)) {
            float[] a = packed.toFloatArray();
            float[] b = plain.toFloatArray();
            double worst = 0;
            double scale = 1e-30;
            for (int i = 0; i < a.length; i++) {
                worst = Math.max(worst, Math.abs(a[i] - b[i]));
                scale = Math.max(scale, Math.abs(b[i]));
            }
            // the inputs are exact and every product sums 64 multiples of 1/64: both ways are exact
            // in F32; in BF16 only the output's rounding (2^-8 of it) may differ
            if (!(worst <= scale * (dtype == DType.BF16 ? 1e-2 : 1e-5))) {
                return String.format("its %s products are wrong on this CPU ([%d,%d]x[%d,%d]: off by %.3g of %.3g)",
                        dtype, m, k, n, k, worst, scale);
            }
            return null;
        } catch (TorchException e) {
            return "mkldnn::_linear_pointwise failed in " + dtype + ": " + e.getMessage();
        }
    }

    /**
     * Probes the prepack op once on a tiny tensor: if the op is missing, libtorch may keep the
     * probe's handle (see {@link Dispatcher}), and a tiny leak is better than a layer's weight.
     */
    static boolean prepackAvailable() {
        return PREPACK_WORKS.get();
    }

    private static boolean probe() {
        try (Tensor w = Tensor.empty(new long[] {16, 16}, DType.BF16, Device.CPU);
             Tensor p = Dispatcher.call("mkldnn::_reorder_linear_weight", "", w, null)) {
            return p.numel() > 0;
        } catch (TorchException e) {
            return false;
        }
    }
}

package io.monostream.torch;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;

/**
 * A decoder's weights laid out once for {@code ms_cpu_decode_step} (C ABI in
 * {@code monostream_cpu.h}): a decode step of up to {@value CpuKernels#MAX_ROWS} sequences, one
 * new text token each, runs as one native call from the token embeddings to the fp32 logits
 * (every layer's norms, projections, attention against each sequence's cache, text expert and
 * residual adds), with the roundings of the model's libtorch ops.
 *
 * <p>The decoder points at the given weight tensors without owning them: they must outlive it.
 * {@link #step} may be called from several threads at once.
 */
public final class CpuDecoder implements AutoCloseable {
    /** One decoder layer's weights (the text expert), each a contiguous CPU tensor of the decoder's dtype. */
    public record Layer(Tensor attentionNorm, Tensor wqkv, Tensor wo, Tensor ffnNorm, Tensor w1, Tensor w3, Tensor w2) {
        /** The weights in the field order of the C structure. */
        public Tensor[] all() {
            return new Tensor[] {attentionNorm, wqkv, wo, ffnNorm, w1, w3, w2};
        }
    }

    /** The decoder's dimensions. */
    public record Dimensions(long hidden, long intermediate, long heads, long kvHeads, long headDim, long vocab, double eps) {}

    /**
     * One sequence's new token.
     *
     * @param past cached positions: the token's key and value go to row {@code past} of every layer's cache
     * @param cos the rotary table at position {@code past}, fp32 [headDim] (rounded to the dtype here); sin likewise
     * @param keys per layer the sequence's key cache [kvHeads, capacity, headDim]; values likewise
     */
    public record Sequence(int token, int past, float[] cos, float[] sin, Tensor[] keys, Tensor[] values) {}

    // field offsets in bytes: every field of the C structures is 8 bytes wide
    private static final long LAYER_BYTES = 7 * 8;
    private static final long MODEL_BYTES = 13 * 8;
    private static final long SEQUENCE_BYTES = 7 * 8;

    private final CpuKernels kernels;
    private final Arena arena;
    private final MemorySegment model;
    private final DType dtype;
    private final Dimensions dims;
    private final int layers;

    private CpuDecoder(CpuKernels kernels, Arena arena, MemorySegment model, DType dtype, Dimensions dims, int layers) {
        this.kernels = kernels;
        this.arena = arena;
        this.model = model;
        this.dtype = dtype;
        this.dims = dims;
        this.layers = layers;
    }

    /**
     * Lays out a decoder over these weights; fails with {@link IllegalArgumentException} when a
     * tensor is not a contiguous CPU tensor of the embeddings' dtype (F32 or BF16) and shape.
     */
    public static CpuDecoder of(CpuKernels kernels, Dimensions d, List<Layer> layers, Tensor embeddings,
            Tensor finalNorm, Tensor head) {
        long qkvRows = d.kvHeads() * (d.heads() / d.kvHeads() + 2) * d.headDim();
        long attended = d.heads() * d.headDim();
        if (layers.isEmpty() || d.kvHeads() < 1 || d.heads() % d.kvHeads() != 0 || d.headDim() % 2 != 0
                || d.headDim() > CpuKernels.MAX_HEAD_DIM) {
            throw new IllegalArgumentException("the CPU decode step does not take " + d + " with " + layers.size() + " layers");
        }
        check(embeddings, embeddings, d.vocab(), d.hidden());
        check(embeddings, finalNorm, d.hidden());
        check(embeddings, head, d.vocab(), d.hidden());
        for (Layer l : layers) {
            check(embeddings, l.attentionNorm(), d.hidden());
            check(embeddings, l.wqkv(), qkvRows, d.hidden());
            check(embeddings, l.wo(), d.hidden(), attended);
            check(embeddings, l.ffnNorm(), d.hidden());
            check(embeddings, l.w1(), d.intermediate(), d.hidden());
            check(embeddings, l.w3(), d.intermediate(), d.hidden());
            check(embeddings, l.w2(), d.hidden(), d.intermediate());
        }
        Arena arena = Arena.ofShared();
        MemorySegment layerArray = arena.allocate(LAYER_BYTES * layers.size(), 8);
        for (int i = 0; i < layers.size(); i++) {
            Tensor[] w = layers.get(i).all();
            for (int f = 0; f < w.length; f++) {
                layerArray.setAtIndex(ADDRESS, i * 7L + f, w[f].dataPointer());
            }
        }
        MemorySegment model = arena.allocate(MODEL_BYTES, 8);
        long[] header = {CpuKernels.code(embeddings), layers.size(), d.hidden(), d.intermediate(), d.heads(), d.kvHeads(),
                d.headDim(), d.vocab()};
        for (int f = 0; f < header.length; f++) {
            model.setAtIndex(JAVA_LONG, f, header[f]);
        }
        model.setAtIndex(JAVA_DOUBLE, 8, d.eps());
        model.setAtIndex(ADDRESS, 9, layerArray);
        model.setAtIndex(ADDRESS, 10, embeddings.dataPointer());
        model.setAtIndex(ADDRESS, 11, finalNorm.dataPointer());
        model.setAtIndex(ADDRESS, 12, head.dataPointer());
        return new CpuDecoder(kernels, arena, model, embeddings.dtype(), d, layers.size());
    }

    private static void check(Tensor reference, Tensor t, long... shape) {
        if (t == null || !CpuKernels.sameKind(reference, t) || !Arrays.equals(t.shape(), shape)) {
            throw new IllegalArgumentException("the CPU decode step needs a contiguous CPU " + reference.dtype()
                    + " tensor " + Arrays.toString(shape) + ", got " + t);
        }
    }

    /** The dtype of weights, caches and tables. */
    public DType dtype() {
        return dtype;
    }

    /**
     * One decode step of these sequences; appends each one's key and value at row {@code past}
     * of its caches. @return the fp32 logits [sequences.size() × vocab], sequence after sequence
     */
    public float[] step(List<Sequence> sequences) {
        float[] logits = new float[(int) (sequences.size() * dims.vocab())];
        step(sequences, logits);
        return logits;
    }

    /** {@link #step(List)} writing the logits into the first sequences.size() × vocab elements of {@code into}. */
    public void step(List<Sequence> sequences, float[] into) {
        int m = sequences.size();
        if (m < 1 || m > CpuKernels.MAX_ROWS) {
            throw new IllegalArgumentException("a CPU decode step takes 1.." + CpuKernels.MAX_ROWS + " sequences, got " + m);
        }
        if (into.length < m * dims.vocab()) {
            throw new IllegalArgumentException("logits for " + m + " sequences need " + m * dims.vocab()
                    + " floats, got " + into.length);
        }
        long d = dims.headDim();
        long element = dtype == DType.BF16 ? 2 : 4;
        try (Arena call = Arena.ofConfined()) {
            MemorySegment seqs = call.allocate(SEQUENCE_BYTES * m, 8);
            MemorySegment tables = call.allocate(2 * m * d * element, 64);
            MemorySegment caches = call.allocate(2L * m * layers * 8, 8);
            for (int r = 0; r < m; r++) {
                Sequence s = sequences.get(r);
                long capacity = checkSequence(s);
                MemorySegment cos = tables.asSlice(2 * r * d * element, d * element);
                MemorySegment sin = tables.asSlice((2 * r + 1) * d * element, d * element);
                writeTable(cos, s.cos());
                writeTable(sin, s.sin());
                MemorySegment keys = caches.asSlice(2L * r * layers * 8, layers * 8L);
                MemorySegment values = caches.asSlice((2L * r + 1) * layers * 8, layers * 8L);
                for (int l = 0; l < layers; l++) {
                    keys.setAtIndex(ADDRESS, l, s.keys()[l].dataPointer());
                    values.setAtIndex(ADDRESS, l, s.values()[l].dataPointer());
                }
                long at = r * 7L;
                seqs.setAtIndex(JAVA_LONG, at, s.token());
                seqs.setAtIndex(JAVA_LONG, at + 1, s.past());
                seqs.setAtIndex(JAVA_LONG, at + 2, capacity);
                seqs.setAtIndex(ADDRESS, at + 3, cos);
                seqs.setAtIndex(ADDRESS, at + 4, sin);
                seqs.setAtIndex(ADDRESS, at + 5, keys);
                seqs.setAtIndex(ADDRESS, at + 6, values);
            }
            MemorySegment logits = call.allocate(JAVA_FLOAT, m * dims.vocab());
            kernels.decodeStep(model, seqs, m, logits);
            MemorySegment.copy(logits, JAVA_FLOAT, 0, into, 0, (int) (m * dims.vocab()));
        }
    }

    /** @return the sequence's cache capacity, after checking its token, position, tables and caches */
    private long checkSequence(Sequence s) {
        long d = dims.headDim();
        if (s.token() < 0 || s.token() >= dims.vocab() || s.cos().length != d || s.sin().length != d
                || s.keys().length != layers || s.values().length != layers) {
            throw new IllegalArgumentException("the CPU decode step does not take token " + s.token() + " with tables of "
                    + s.cos().length + "/" + s.sin().length + " and caches for " + s.keys().length + "/"
                    + s.values().length + " layers");
        }
        long capacity = s.keys()[0].shape().length == 3 ? s.keys()[0].shape()[1] : -1;
        for (int l = 0; l < layers; l++) {
            for (Tensor c : new Tensor[] {s.keys()[l], s.values()[l]}) {
                if (!CpuKernels.sameKind(c, c) || c.dtype() != dtype
                        || !Arrays.equals(c.shape(), new long[] {dims.kvHeads(), capacity, d})) {
                    throw new IllegalArgumentException("the CPU decode step needs " + dtype + " caches [" + dims.kvHeads()
                            + ", capacity, " + d + "] on the CPU, got " + c);
                }
            }
        }
        if (s.past() < 0 || s.past() >= capacity) {
            throw new IllegalStateException("KV cache overflow: position " + s.past() + " in a cache of " + capacity);
        }
        return capacity;
    }

    /** values in the decoder's dtype (BF16 rounded to nearest even, as libtorch's cast). */
    private void writeTable(MemorySegment into, float[] values) {
        if (dtype == DType.F32) {
            MemorySegment.copy(values, 0, into, JAVA_FLOAT, 0, values.length);
            return;
        }
        for (int i = 0; i < values.length; i++) {
            into.setAtIndex(JAVA_SHORT, i, bf16(values[i]));
        }
    }

    /** fp32 to BF16, round to nearest even, NaN kept quiet. */
    static short bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        bits += 0x7fff + ((bits >>> 16) & 1);
        return (short) (bits >>> 16);
    }

    @Override
    public void close() {
        arena.close();
    }
}

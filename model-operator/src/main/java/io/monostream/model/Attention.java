package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.monostream.torch.Aten;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.Tensor;

import java.util.List;
import java.util.Optional;

/**
 * InternLM2 attention with the fused {@code wqkv} projection (spec §6). The 3-D view of wqkv's
 * rows is [kvHeads][group + 2][headDim]: slots 0..group−1 are the query heads that share KV
 * head g (query head g·group + s), slot group is K head g, slot group + 1 is V head g.
 * This is not a [Q|K|V] block layout.
 *
 * <p>The projections run once over the rows of every sequence in the batch; the causal
 * attention itself runs per sequence against its own cache.
 */
final class Attention {
    private static final String SDPA = "aten::scaled_dot_product_attention";

    private final Projection wqkv;
    private final Projection wo;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int group;
    private final boolean fused;
    private final CpuKernels kernel; // null: decode attention through libtorch too

    /** Rows [offset, offset + length) of the batch belong to one sequence with these rotary tables. */
    record Segment(int offset, int length, KvCache cache, NDArray cos, NDArray sin) {}

    /** @param fused attention through {@code aten::scaled_dot_product_attention} instead of explicit matmuls */
    Attention(Projection wqkv, Projection wo, int heads, int kvHeads, int headDim, boolean fused) {
        this.wqkv = wqkv;
        this.wo = wo;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.group = heads / kvHeads;
        this.fused = fused;
        this.kernel = fused && headDim <= CpuKernels.MAX_HEAD_DIM ? CpuKernels.get().orElse(null) : null;
    }

    /** @param x [N, H] normalised hidden states of every new row in the batch; @return [N, H] */
    NDArray forward(NDArray x, List<Segment> segments, int layer) {
        int rows = (int) x.getShape().get(0);
        NDArray qkv = wqkv.apply(x).reshape(rows, kvHeads, group + 2, headDim);
        NDList outputs = new NDList(segments.size());
        for (Segment s : segments) {
            NDArray part = segments.size() == 1 ? qkv : qkv.get("{}:{}", s.offset(), s.offset() + s.length());
            outputs.add(attend(part, s, layer));
        }
        NDArray merged = outputs.size() == 1 ? outputs.get(0) : NDArrays.concat(outputs, 0);
        return wo.apply(merged);
    }

    /** Causal attention of one sequence's new rows; @return [L, heads · d] */
    private NDArray attend(NDArray qkv, Segment s, int layer) {
        if (kernel != null && s.length() == 1) {
            NDArray out = attendDecode(qkv, s, layer);
            if (out != null) {
                return out;
            }
        }
        int length = s.length();
        KvCache cache = s.cache();
        int past = cache.length();
        int total = past + length;
        NDManager m = qkv.getManager();
        NDArray q = null;
        Tensor[] c = kernel == null || qkv.getDevice().isGpu() ? null : cache.tensors(layer, length);
        try (Tensor rotated = c == null ? null : kernelInputs(qkv, s, c)) { // [heads, L, d], the cache written
            if (rotated != null) {
                if (kernel.handlesAttentionPrefill(rotated, c[0], c[1], past)) {
                    try (Tensor out = kernel.attentionPrefill(rotated, c[0], c[1], past)) {
                        return out.toNDArray(m); // [L, heads · d]
                    }
                }
                q = rotated.toNDArray(m);
            }
        }
        NDArray[] kv;
        if (q != null) {
            kv = cache.cached(layer, total, m);
        } else {
            q = qkv.get(":, :, :{}, :", group).reshape(length, heads, headDim);
            NDArray k = qkv.get(":, :, {}, :", group);
            NDArray v = qkv.get(":, :, {}, :", group + 1);
            q = RotaryEmbedding.apply(q, s.cos(), s.sin()).transpose(1, 0, 2); // [heads, L, d]
            k = RotaryEmbedding.apply(k, s.cos(), s.sin()).transpose(1, 0, 2); // [kvHeads, L, d]
            kv = cache.append(layer, k, v.transpose(1, 0, 2));
        }
        if (!fused) {
            return explicit(q, expand(kv[0], total), expand(kv[1], total), past, length, total);
        }
        if (past == 0 && length > 1) {
            // a fresh prompt: the CPU flash kernel with is_causal; KV expanded to every query head,
            // because enable_gqa makes it fall back to a slow path (dependencies.md)
            NDArray out = Aten.call(m, SDPA, "", q.expandDims(0), expand(kv[0], length).expandDims(0),
                    expand(kv[1], length).expandDims(0), null, 0.0, true, null, false); // [1, heads, L, d]
            return out.squeeze(0).transpose(1, 0, 2).reshape(length, (long) heads * headDim);
        }
        // after a cache: the queries of one KV head stacked as [group · L] rows against that head's
        // keys, so the cache is read as it is; the mask (repeated per group) keeps it causal
        NDArray grouped = q.reshape(1, kvHeads, (long) group * length, headDim);
        Object mask = length == 1 ? null : Optional.of(visible(m, past, length, total).tile(new long[] {group, 1}));
        NDArray out = Aten.call(m, SDPA, "", grouped, kv[0].expandDims(0), kv[1].expandDims(0),
                mask, 0.0, false, null, false); // [1, kvHeads, group · L, d]
        return out.reshape(kvHeads, group, length, headDim).transpose(2, 0, 1, 3)
                .reshape(length, (long) heads * headDim);
    }

    /**
     * Rotary embedding, the cache write and the query layout of several new tokens in one call to
     * {@link CpuKernels#attentionInputs} into the layer's {@code cache} tensors: the rotated queries
     * [heads, L, d] (the caller closes them), or null when it does not take these arrays (views);
     * the cache's rows are then untouched.
     */
    private Tensor kernelInputs(NDArray qkv, Segment s, Tensor[] cache) {
        try (Tensor q = Aten.wrap(qkv); Tensor cos = Aten.wrap(s.cos()); Tensor sin = Aten.wrap(s.sin())) {
            if (!q.isContiguous() || !cos.isContiguous() || !sin.isContiguous()) {
                return null;
            }
            return kernel.attentionInputs(q, cos, sin, cache[0], cache[1], s.cache().length());
        }
    }

    /** One new token in one call to {@link CpuKernels#attendDecode}; null when it does not take these arrays (CUDA, views). */
    private NDArray attendDecode(NDArray qkv, Segment s, int layer) {
        if (qkv.getDevice().isGpu()) {
            return null;
        }
        Tensor[] cache = s.cache().tensors(layer);
        try (Tensor q = Aten.wrap(qkv); Tensor cos = Aten.wrap(s.cos()); Tensor sin = Aten.wrap(s.sin())) {
            if (!q.isContiguous() || !cos.isContiguous() || !sin.isContiguous()) {
                return null;
            }
            try (Tensor out = kernel.attendDecode(q, cos, sin, cache[0], cache[1], s.cache().length())) {
                return out.toNDArray(qkv.getManager());
            }
        }
    }

    /** Scores, fp32 softmax and P·V as separate ops (the reference's way); q [heads, L, d]. */
    private NDArray explicit(NDArray q, NDArray keys, NDArray values, int past, int length, int total) {
        NDArray scores = Precision.widen(q.batchMatMul(keys.transpose(0, 2, 1))).div((float) Math.sqrt(headDim));
        if (length > 1) {
            scores = scores.add(causalMask(q.getManager(), past, length, total));
        }
        NDArray probabilities = scores.softmax(-1); // fp32 (DJL's softmax must not see BF16)
        if (Aten.dtype(values) != io.monostream.torch.DType.F32) {
            probabilities = Aten.cast(probabilities, Aten.dtype(values));
        }
        NDArray out = probabilities.batchMatMul(values); // [heads, L, d]
        return out.transpose(1, 0, 2).reshape(length, (long) heads * headDim);
    }

    private NDArray expand(NDArray kv, int total) {
        if (group == 1) {
            return kv;
        }
        return kv.expandDims(1).broadcast(kvHeads, group, total, headDim).reshape(heads, total, headDim);
    }

    /** Boolean [L, S]: query i (position past + i) sees keys 0..past + i. */
    private static NDArray visible(NDManager manager, int past, int length, int total) {
        NDArray rows = manager.arange(past, past + length, 1, DataType.INT32).reshape(length, 1);
        NDArray cols = manager.arange(0, total, 1, DataType.INT32).reshape(1, total);
        return cols.lte(rows);
    }

    /** Additive mask [L, S]: query i (position past + i) sees keys 0..past + i. */
    private static NDArray causalMask(NDManager manager, int past, int length, int total) {
        NDArray rows = manager.arange(past, past + length, 1, DataType.INT32).reshape(length, 1);
        NDArray cols = manager.arange(0, total, 1, DataType.INT32).reshape(1, total);
        // 0 where visible, the lowest float where hidden (as the reference's finfo.min mask)
        return cols.gt(rows).toType(DataType.FLOAT32, false).mul(-Float.MAX_VALUE);
    }

    Projection wqkv() {
        return wqkv;
    }

    Projection wo() {
        return wo;
    }

    /** Whether decode attention runs in the CPU kernel (fused attention, CPU, head dimension in range). */
    boolean kernelDecode() {
        return kernel != null;
    }

    /** Useful FLOPs for L new tokens after {@code past} cached ones: projections plus causal attention. */
    long flops(long length, long past) {
        long hidden = wo.out();
        long projections = 2 * length * hidden * (wqkv.out() + wo.in());
        // each query attends to past + its own prefix: QK^T and PV, 2 FLOPs per multiply-add
        long attended = length * past + length * (length + 1) / 2;
        return projections + 2 * 2 * attended * heads * headDim;
    }
}

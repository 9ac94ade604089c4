package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.nn.core.Linear;

import java.util.List;

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
    private final NDArray wqkv;
    private final NDArray wo;
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final int group;

    /** Rows [offset, offset + length) of the batch belong to one sequence with these rotary tables. */
    record Segment(int offset, int length, KvCache cache, NDArray cos, NDArray sin) {}

    Attention(NDArray wqkv, NDArray wo, int heads, int kvHeads, int headDim) {
        this.wqkv = wqkv;
        this.wo = wo;
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
        this.group = heads / kvHeads;
    }

    /** @param x [N, H] normalised hidden states of every new row in the batch; @return [N, H] */
    NDArray forward(NDArray x, List<Segment> segments, int layer) {
        int rows = (int) x.getShape().get(0);
        NDArray qkv = Linear.linear(x, wqkv).singletonOrThrow().reshape(rows, kvHeads, group + 2, headDim);
        NDList outputs = new NDList(segments.size());
        for (Segment s : segments) {
            NDArray part = segments.size() == 1 ? qkv : qkv.get("{}:{}", s.offset(), s.offset() + s.length());
            outputs.add(attend(part, s, layer));
        }
        NDArray merged = outputs.size() == 1 ? outputs.get(0) : NDArrays.concat(outputs, 0);
        return Linear.linear(merged, wo).singletonOrThrow();
    }

    /** Causal attention of one sequence's new rows; @return [L, heads · d] */
    private NDArray attend(NDArray qkv, Segment s, int layer) {
        int length = s.length();
        KvCache cache = s.cache();
        int past = cache.length();
        NDArray q = qkv.get(":, :, :{}, :", group).reshape(length, heads, headDim);
        NDArray k = qkv.get(":, :, {}, :", group);
        NDArray v = qkv.get(":, :, {}, :", group + 1);
        q = RotaryEmbedding.apply(q, s.cos(), s.sin()).transpose(1, 0, 2); // [heads, L, d]
        k = RotaryEmbedding.apply(k, s.cos(), s.sin()).transpose(1, 0, 2); // [kvHeads, L, d]
        v = v.transpose(1, 0, 2);
        NDArray[] kv = cache.append(layer, k, v);
        int total = past + length;
        // GQA: query head h reads KV head h / group
        NDArray keys = expand(kv[0], total);
        NDArray values = expand(kv[1], total);
        NDArray scores = q.batchMatMul(keys.transpose(0, 2, 1)).div((float) Math.sqrt(headDim)); // [heads, L, S]
        if (length > 1) {
            scores = scores.add(causalMask(q.getManager(), past, length, total));
        }
        NDArray out = scores.softmax(-1).batchMatMul(values); // [heads, L, d]
        return out.transpose(1, 0, 2).reshape(length, (long) heads * headDim);
    }

    private NDArray expand(NDArray kv, int total) {
        if (group == 1) {
            return kv;
        }
        return kv.expandDims(1).broadcast(kvHeads, group, total, headDim).reshape(heads, total, headDim);
    }

    /** Additive mask [L, S]: query i (position past + i) sees keys 0..past + i. */
    private static NDArray causalMask(NDManager manager, int past, int length, int total) {
        NDArray rows = manager.arange(past, past + length, 1, DataType.INT32).reshape(length, 1);
        NDArray cols = manager.arange(0, total, 1, DataType.INT32).reshape(1, total);
        // 0 where visible, the lowest float where hidden (as the reference's finfo.min mask)
        return cols.gt(rows).toType(DataType.FLOAT32, false).mul(-Float.MAX_VALUE);
    }

    /** Useful FLOPs for L new tokens after {@code past} cached ones: projections plus causal attention. */
    long flops(long length, long past) {
        long hidden = wo.getShape().get(0);
        long projections = 2 * length * hidden * (wqkv.getShape().get(0) + wo.getShape().get(1));
        // each query attends to past + its own prefix: QK^T and PV, 2 FLOPs per multiply-add
        long attended = length * past + length * (length + 1) / 2;
        return projections + 2 * 2 * attended * heads * headDim;
    }
}

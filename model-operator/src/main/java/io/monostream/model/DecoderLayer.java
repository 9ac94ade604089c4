package io.monostream.model;

import ai.djl.ndarray.NDArray;

import java.util.List;

/** One InternLM2 decoder layer with the multimodal MoE (spec §6). */
final class DecoderLayer {
    private final int index;
    private final RmsNorm attentionNorm;
    private final Attention attention;
    private final RmsNorm ffnNorm;
    private final MultimodalMoe moe;

    DecoderLayer(int index, RmsNorm attentionNorm, Attention attention, RmsNorm ffnNorm, MultimodalMoe moe) {
        this.index = index;
        this.attentionNorm = attentionNorm;
        this.attention = attention;
        this.ffnNorm = ffnNorm;
        this.moe = moe;
    }

    /** h += Attn(RMS(h)); h += MoE(RMS(h), m), over every row of the batch. */
    NDArray forward(NDArray h, ModalityRuns runs, List<Attention.Segment> segments) {
        h = h.add(attention.forward(attentionNorm.forward(h), segments, index));
        return h.add(moe.forward(ffnNorm.forward(h), runs));
    }

    RmsNorm attentionNorm() {
        return attentionNorm;
    }

    RmsNorm ffnNorm() {
        return ffnNorm;
    }

    MultimodalMoe moe() {
        return moe;
    }

    Attention attention() {
        return attention;
    }
}

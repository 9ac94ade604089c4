package io.monostream.model;

import ai.djl.ndarray.NDArray;

/**
 * New tokens of one sequence for one forward: a whole prompt, a chunk of one, or one decoded
 * token. Several chunks run as one batch: every projection and expert sees all their rows at once,
 * attention runs per sequence against that sequence's own cache.
 *
 * @param ids the new tokens
 * @param imageRows [count of image-context ids, hidden] rows that replace those tokens' embeddings,
 *     in order; null when the chunk holds no image token
 * @param cache the sequence's cache; the chunk's keys and values are appended to it
 */
public record SequenceChunk(int[] ids, NDArray imageRows, KvCache cache) {
    public static SequenceChunk text(int[] ids, KvCache cache) {
        return new SequenceChunk(ids, null, cache);
    }
}

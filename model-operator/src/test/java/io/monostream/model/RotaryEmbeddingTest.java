package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Spec §10 invariant 7: position 0 is the identity and ⟨q'_m, k'_n⟩ depends only on m − n; dynamic NTK base. */
class RotaryEmbeddingTest {
    @Test
    void positionZeroIsIdentityAndScoresDependOnlyOnTheOffset() {
        int d = 16;
        RotaryEmbedding rope = new RotaryEmbedding(d, 1e6, null, 1, 4096);
        try (NDManager m = NDManager.newBaseManager()) {
            m.getEngine().setRandomSeed(3);
            NDArray q = m.randomNormal(new Shape(1, 1, d));
            NDArray k = m.randomNormal(new Shape(1, 1, d));
            NDList at0 = rope.cosSin(m, 0, 1);
            assertArrayEquals(q.toFloatArray(), RotaryEmbedding.apply(q, at0.get(0), at0.get(1)).toFloatArray(), 0f);
            double first = score(rope, m, q, k, 5, 2);
            double second = score(rope, m, q, k, 105, 102);
            assertEquals(first, second, 1e-4);
        }
    }

    private static double score(RotaryEmbedding rope, NDManager m, NDArray q, NDArray k, int qPos, int kPos) {
        NDList cq = rope.cosSin(m, qPos, 1);
        NDList ck = rope.cosSin(m, kPos, 1);
        return RotaryEmbedding.apply(q, cq.get(0), cq.get(1)).mul(RotaryEmbedding.apply(k, ck.get(0), ck.get(1))).sum().getFloat();
    }

    @Test
    void dynamicNtkRaisesTheBaseOnlyPastTheTrainedLength() {
        RotaryEmbedding rope = new RotaryEmbedding(128, 1e6, "dynamic", 2.0, 32768);
        assertEquals(1e6, rope.base(32768));
        assertEquals(1e6 * Math.pow(2.0 * 40000 / 32768 - 1, 128.0 / 126), rope.base(40000), 1e-3);
    }
}

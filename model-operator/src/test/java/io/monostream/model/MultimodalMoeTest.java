package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Spec §10 invariants 8 and 9 at the MoE: the partitioned MoE equals per-token selection
 * (masked sum) for all-text, all-image, alternating, straddling runs and one token; each
 * expert's rows do not depend on the other expert's weights.
 */
class MultimodalMoeTest {
    private static final int H = 48;
    private static final int I = 80;

    private static FeedForward expert(NDManager m, float scale) {
        return new FeedForward(m.randomNormal(new Shape(I, H)).mul(scale), m.randomNormal(new Shape(H, I)).mul(scale),
                m.randomNormal(new Shape(I, H)).mul(scale));
    }

    private static void assertMatchesSelection(NDManager m, MultimodalMoe moe, boolean[] mask) {
        NDArray x = m.randomNormal(new Shape(mask.length, H));
        ModalityRuns runs = ModalityRuns.of(mask);
        float[] partitioned = moe.forward(x, runs).toFloatArray();
        float[] selected = moe.forwardComputeBothAndMask(x, runs).toFloatArray();
        assertEquals(selected.length, partitioned.length);
        for (int i = 0; i < selected.length; i++) {
            assertEquals(selected[i], partitioned[i], 1e-5 * Math.max(1, Math.abs(selected[i])), "element " + i);
        }
    }

    @Test
    void partitionedEqualsPerTokenSelectionForEveryMaskShape() {
        try (NDManager m = NDManager.newBaseManager()) {
            m.getEngine().setRandomSeed(11);
            MultimodalMoe moe = new MultimodalMoe(expert(m, 0.2f), expert(m, 0.3f));
            boolean[] allText = new boolean[37];
            boolean[] allImage = new boolean[37];
            Arrays.fill(allImage, true);
            boolean[] alternating = new boolean[37];
            for (int i = 0; i < alternating.length; i++) {
                alternating[i] = i % 2 == 1;
            }
            // a prompt with two image blocks whose runs straddle the tile size of any kernel
            boolean[] blocks = new boolean[300];
            Arrays.fill(blocks, 5, 133, true);
            Arrays.fill(blocks, 140, 299, true);
            for (boolean[] mask : new boolean[][] {allText, allImage, alternating, blocks, {false}, {true}}) {
                assertMatchesSelection(m, moe, mask);
            }
        }
    }

    @Test
    void visualRowsIgnoreTheTextExpertAndTextRowsIgnoreTheVisualExpert() {
        try (NDManager m = NDManager.newBaseManager()) {
            m.getEngine().setRandomSeed(12);
            FeedForward text = expert(m, 0.2f);
            FeedForward visual = expert(m, 0.3f);
            FeedForward otherText = expert(m, 0.25f);
            FeedForward otherVisual = expert(m, 0.35f);
            boolean[] mask = new boolean[20];
            Arrays.fill(mask, 4, 12, true);
            ModalityRuns runs = ModalityRuns.of(mask);
            NDArray x = m.randomNormal(new Shape(20, H));
            NDArray base = new MultimodalMoe(text, visual).forward(x, runs);
            NDArray textChanged = new MultimodalMoe(otherText, visual).forward(x, runs);
            NDArray visualChanged = new MultimodalMoe(text, otherVisual).forward(x, runs);
            assertArrayEquals(base.get("4:12").toFloatArray(), textChanged.get("4:12").toFloatArray());
            assertArrayEquals(base.get("0:4").toFloatArray(), visualChanged.get("0:4").toFloatArray());
            assertArrayEquals(base.get("12:").toFloatArray(), visualChanged.get("12:").toFloatArray());
            assertTrue(base.get("0:4").sub(textChanged.get("0:4")).abs().max().getFloat() > 1e-3, "text rows use the text expert");
        }
    }

    @Test
    void runsAreMaximalAndCountVisualTokens() {
        ModalityRuns runs = ModalityRuns.of(new int[] {1, 9, 9, 9, 4, 9}, 9);
        assertEquals(4, runs.runs().size());
        assertEquals(4, runs.visualCount());
        assertEquals(new ModalityRuns.Run(1, 4, true), runs.runs().get(1));
    }
}

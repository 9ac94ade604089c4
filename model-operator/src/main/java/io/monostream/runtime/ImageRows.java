package io.monostream.runtime;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import io.monostream.model.MonoInternVL;
import io.monostream.torch.Aten;
import io.monostream.vision.PreprocessedImage;

import java.util.ArrayList;
import java.util.List;

/**
 * One image's rows for the decoder ({@code tokensPerTile} per tile, in tile order), run through
 * the patch embedding only when a prefill pass first needs them: a long image prompt prefilled
 * over several passes embeds each pass's tiles in that pass, not all of them before the first.
 * The embedded rows belong to the manager it is given (its group's, in {@link BatchedPrefill}) and
 * stay until the group leaves the prefill, since several prompts of one group may read the same
 * image.
 */
final class ImageRows {
    private final MonoInternVL model;
    private final NDManager owner;
    private final PreprocessedImage image;
    private final int perTile;
    /** Consecutive runs of embedded tiles, in order: run k starts at tile {@code firstTiles.get(k)}. */
    private final List<NDArray> runs = new ArrayList<>();
    private final List<Integer> firstTiles = new ArrayList<>();
    private int embeddedTiles;

    ImageRows(MonoInternVL model, NDManager owner, PreprocessedImage image) {
        this.model = model;
        this.owner = owner;
        this.image = image;
        this.perTile = model.tokensPerTile();
    }

    int rowCount() {
        return image.tileCount() * perTile;
    }

    /**
     * Rows {@code [from, to)}, embedding the tiles up to the one that holds row {@code to - 1}
     * first if they are not yet. The result is either one of this object's own arrays (do not
     * close it) or an array attached to {@code scope}.
     */
    NDArray rows(NDManager scope, int from, int to) {
        if (from < 0 || to > rowCount() || from >= to) {
            throw new IllegalArgumentException("rows " + from + ".." + to + " of an image of " + rowCount());
        }
        int lastTile = (to - 1) / perTile;
        if (lastTile >= embeddedTiles) {
            embed(embeddedTiles, lastTile + 1);
        }
        NDList pieces = new NDList();
        for (int k = 0; k < runs.size(); k++) {
            int start = firstTiles.get(k) * perTile;
            NDArray run = runs.get(k);
            int end = start + (int) run.getShape().get(0);
            int a = Math.max(from, start);
            int b = Math.min(to, end);
            if (a >= b) {
                continue;
            }
            if (a == start && b == end && from == a && to == b) {
                return run; // exactly one run: no view, no copy
            }
            NDArray view = run.get("{}:{}", a - start, b - start);
            view.attach(scope);
            pieces.add(view);
        }
        if (pieces.size() == 1) {
            return pieces.get(0);
        }
        NDArray joined = NDArrays.concat(pieces, 0);
        joined.attach(scope);
        pieces.close();
        return joined;
    }

    /** Runs tiles {@code [first, end)} through the patch embedding in one batch; its intermediates are freed at once. */
    private void embed(int first, int end) {
        int s = image.tileSize();
        int tileFloats = 3 * s * s;
        try (NDManager vision = owner.newSubManager()) {
            NDArray rows = model.embedImages(Aten.fromFloatSlice(vision, image.pixelValues(), first * tileFloats, end - first, 3, s, s));
            rows.attach(owner);
            runs.add(rows);
            firstTiles.add(first);
        }
        embeddedTiles = end;
    }
}

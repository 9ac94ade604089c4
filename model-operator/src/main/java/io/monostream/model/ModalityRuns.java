package io.monostream.model;

import java.util.ArrayList;
import java.util.List;

/**
 * A token sequence cut into maximal runs of one modality (spec §6, §8). The MoE and the image
 * embedding splice work run by run, so a sequence of one modality costs nothing extra.
 */
public record ModalityRuns(List<Run> runs, int length, int visualCount) {

    /** Tokens [start, end) all of one modality. */
    public record Run(int start, int end, boolean visual) {
        public int length() {
            return end - start;
        }
    }

    public ModalityRuns {
        runs = List.copyOf(runs);
    }

    /** Runs of the mask {@code id == imageContextId} over {@code ids}. */
    public static ModalityRuns of(int[] ids, int imageContextId) {
        boolean[] visual = new boolean[ids.length];
        for (int i = 0; i < ids.length; i++) {
            visual[i] = ids[i] == imageContextId;
        }
        return of(visual);
    }

    public static ModalityRuns of(boolean[] visual) {
        List<Run> runs = new ArrayList<>();
        int start = 0;
        int count = 0;
        for (int i = 0; i < visual.length; i++) {
            if (visual[i]) {
                count++;
            }
            if (i + 1 == visual.length || visual[i + 1] != visual[start]) {
                runs.add(new Run(start, i + 1, visual[start]));
                start = i + 1;
            }
        }
        return new ModalityRuns(runs, visual.length, count);
    }

    public boolean allText() {
        return visualCount == 0;
    }

    public boolean allVisual() {
        return visualCount == length;
    }

    public int textCount() {
        return length - visualCount;
    }
}

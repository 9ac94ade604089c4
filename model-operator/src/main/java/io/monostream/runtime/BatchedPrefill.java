package io.monostream.runtime;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.monostream.model.KvCache;
import io.monostream.model.MonoInternVL;
import io.monostream.model.SequenceChunk;
import io.monostream.runtime.ContinuousBatchScheduler.Group;
import io.monostream.vision.PreprocessedImage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The prefill of admitted groups, run one pass of at most {@code maxPrefillTokens} prompt rows at
 * a time, so that the scheduler runs a decode step of the sequences already generating between
 * two passes instead of making them wait for a whole long prompt.
 *
 * <p>Groups may join while it is in progress ({@link #join}). A short one's parts go ahead of the
 * parts still unfinished, so a short prompt that arrives during a long one is prefilled in the
 * next pass (the scheduler admits such newcomers only within half a pass, so the long prompt keeps
 * at least the other half of every pass). A long one's parts go behind every unfinished part (the
 * scheduler admits it once the next pass would reach it): it takes the room the pass that finishes
 * the prompts before it leaves. A group whose parts are all done leaves at once
 * ({@link #takeFinished}) and starts decoding, whatever is still being prefilled beside it. Its
 * members' prefill starts ({@link Sequence#prefillStartNanos}) with the first pass that runs one of
 * its parts.
 *
 * <p>A single request's prompt is prefilled whole. A shared group (caption and OCR of one image)
 * runs its image prefix once; once that is cached, each member forks the prefix cache and runs its
 * own suffix. Each pass takes the parts in order; a part longer than a pass's room is split
 * across passes, its image rows with it, and its later pieces attend to the earlier ones through
 * its cache. Each pass's intermediates are freed before the next, so a prefill's working memory is
 * bounded by the pass, not by the prompts.
 *
 * <p>Used by the model thread only.
 */
final class BatchedPrefill implements AutoCloseable {
    private final MonoInternVL model;
    private final int maxPrefillTokens;
    private final int imageEndId;
    private final List<Group> groups;
    private final NDManager step;
    private final boolean acceptsMore;
    /** The parts still to run, in the order the passes take them. */
    private final List<Part> parts = new ArrayList<>();
    /**
     * Groups whose parts are not made yet, to go ahead of the unfinished parts: the next pass makes
     * them, so that a failure to make them (a cache that does not fit in memory) is that pass's,
     * which the scheduler isolates.
     */
    private final List<Group> arriving = new ArrayList<>();
    /**
     * Groups to go behind every unfinished part, in order: a pass makes one's parts when it first
     * reaches them, so their caches are allocated when they are about to be filled, not while the
     * group waits behind a long prompt.
     */
    private final List<Group> arrivingBehind = new ArrayList<>();
    /** Each group's own manager: its image rows and prefix cache, freed when it leaves. */
    private final Map<Group, NDManager> groupScopes = new IdentityHashMap<>();
    private int tokens;

    /** Prompt rows that run through one cache: a whole prompt, an image prefix, or a suffix after a fork. */
    private static final class Part {
        final int[] ids;
        final ImageRows image;
        final KvCache cache;
        final Group group;
        /** Gets the last row's logits when the part is done; null for an image prefix. */
        final Sequence owner;
        /** The members that fork from this image prefix's cache once it is done; null otherwise. */
        final List<Sequence> forks;
        int done;
        int imageRowsDone;

        Part(int[] ids, ImageRows image, KvCache cache, Group group, Sequence owner, List<Sequence> forks) {
            this.ids = ids;
            this.image = image;
            this.cache = cache;
            this.group = group;
            this.owner = owner;
            this.forks = forks;
        }

        boolean finished() {
            return done == ids.length;
        }
    }

    /**
     * @param acceptsMore whether groups may {@link #add join} it later (not a prefill that retries
     *     one group alone after a batch failed, so that its failure stays its own)
     */
    BatchedPrefill(MonoInternVL model, int maxPrefillTokens, int imageEndId, List<Group> groups, boolean acceptsMore) {
        this.model = model;
        this.maxPrefillTokens = maxPrefillTokens;
        this.imageEndId = imageEndId;
        this.groups = new ArrayList<>(groups);
        this.arriving.addAll(groups);
        this.acceptsMore = acceptsMore;
        this.step = model.manager().newSubManager();
    }

    /** The groups still being prefilled (not those {@link #takeFinished taken} or {@link #abandon abandoned}). */
    List<Group> groups() {
        return groups;
    }

    boolean acceptsMore() {
        return acceptsMore;
    }

    /** Requests in its groups: they hold batch slots. */
    int members() {
        int n = 0;
        for (Group g : groups) {
            n += g.members().size();
        }
        return n;
    }

    /**
     * Groups that join the prefill in progress, from the next pass: the prompts of {@code ahead}
     * run before what is unfinished, those of {@code behind} after it.
     */
    void join(List<Group> ahead, List<Group> behind) {
        if (!acceptsMore) {
            throw new IllegalStateException("this prefill retries one group alone");
        }
        groups.addAll(ahead);
        groups.addAll(behind);
        arriving.addAll(ahead);
        arrivingBehind.addAll(behind);
    }

    /**
     * About the prompt tokens its passes have still to run, joined groups included (the suffixes of
     * an image prefix not yet forked are left out: a few tokens each).
     */
    long unfinishedTokens() {
        long n = 0;
        for (Part p : parts) {
            n += p.ids.length - p.done;
        }
        for (Group g : arriving) {
            n += promptTokens(g, imageEndId);
        }
        for (Group g : arrivingBehind) {
            n += promptTokens(g, imageEndId);
        }
        return n;
    }

    /** Removes and returns the groups whose every part has run (their members' first logits are set). */
    List<Group> takeFinished() {
        List<Group> finished = new ArrayList<>();
        for (Group g : groups) {
            if (arriving.contains(g) || arrivingBehind.contains(g)) {
                continue;
            }
            boolean done = true;
            for (Part p : parts) {
                done &= p.group != g;
            }
            if (done) {
                finished.add(g);
            }
        }
        groups.removeAll(finished);
        finished.forEach(this::leave);
        return finished;
    }

    /** Prompt tokens run so far (a shared prefix counts once). */
    int tokens() {
        return tokens;
    }

    /**
     * Runs the next pass. When the pass finishes a member's prompt, that member's
     * {@link Sequence#firstLogits} are set; when it finishes an image prefix, the members fork its
     * cache. Returns the prompt tokens the pass ran.
     */
    int runPass() {
        if (!arriving.isEmpty()) {
            List<Part> made = new ArrayList<>();
            for (Group g : arriving) {
                made.addAll(partsOf(g));
            }
            parts.addAll(0, made);
            arriving.clear();
        }
        long now = System.nanoTime();
        int room = maxPrefillTokens;
        List<Part> forked = new ArrayList<>();
        try (NDManager scope = step.newSubManager()) {
            List<SequenceChunk> pass = new ArrayList<>();
            List<Part> owners = new ArrayList<>();
            for (int i = 0; room > 0; i++) {
                if (i == parts.size()) {
                    if (arrivingBehind.isEmpty()) {
                        break;
                    }
                    parts.addAll(partsOf(arrivingBehind.remove(0))); // at least one part: a group has members
                }
                Part p = parts.get(i);
                int n = Math.min(p.ids.length - p.done, room);
                if (n == 0) {
                    continue;
                }
                int[] ids = n == p.ids.length ? p.ids : Arrays.copyOfRange(p.ids, p.done, p.done + n);
                int visual = 0;
                for (int id : ids) {
                    visual += id == model.imageContextId() ? 1 : 0;
                }
                NDArray rows = visual == 0 ? null : p.image.rows(scope, p.imageRowsDone, p.imageRowsDone + visual);
                pass.add(new SequenceChunk(ids, rows, p.cache));
                owners.add(p);
                for (Sequence s : p.group.members()) {
                    if (s.prefillStartNanos == 0) {
                        s.prefillStartNanos = now;
                    }
                }
                p.done += n;
                p.imageRowsDone += visual;
                room -= n;
            }
            NDArray hidden = model.forward(scope, pass);
            int row = 0;
            for (int k = 0; k < pass.size(); k++) {
                Part p = owners.get(k);
                row += pass.get(k).ids().length;
                if (!p.finished()) {
                    continue;
                }
                if (p.owner != null) {
                    p.owner.firstLogits = model.logits(hidden.get(row - 1)).toFloatArray();
                } else {
                    forked.add(p);
                }
            }
            for (Part prefix : forked) {
                forkSuffixes(prefix);
            }
        }
        prune();
        tokens += maxPrefillTokens - room;
        return maxPrefillTokens - room;
    }

    /** Stops prefilling a group (its members were cancelled or expired); the caller releases their caches. */
    void abandon(Group g) {
        for (Part p : parts) {
            if (p.group == g) {
                p.done = p.ids.length;
            }
        }
        groups.remove(g);
        arriving.remove(g);
        arrivingBehind.remove(g);
        leave(g);
        prune();
    }

    /** Frees the image rows and prefix cache of a group that left. */
    private void leave(Group g) {
        NDManager own = groupScopes.remove(g);
        if (own != null) {
            own.close();
        }
    }

    /** Drops the finished parts (an image prefix has forked its members by then). */
    private void prune() {
        parts.removeIf(Part::finished);
    }

    /** Frees what the prefill holds itself (image rows, prefix caches); the members' caches stay theirs. */
    @Override
    public void close() {
        step.close();
    }

    /**
     * A group's parts: its image prefix (when members share one), then each other member's whole
     * prompt. Its image rows and prefix cache belong to a manager of its own, freed when it leaves.
     */
    private List<Part> partsOf(Group g) {
        NDManager own = step.newSubManager();
        groupScopes.put(g, own);
        PreprocessedImage image = g.members().get(0).prepared.image();
        ImageRows rows = image == null ? null : new ImageRows(model, own, image);
        int[] prefix = g.members().size() == 1 ? null : sharedPrefix(g);
        // only prompts that start with the whole image prefix can fork from it (a question with an
        // <image> placeholder after some text puts the block elsewhere)
        List<Sequence> forks = new ArrayList<>();
        List<Sequence> alone = new ArrayList<>();
        for (Sequence s : g.members()) {
            (prefix != null && startsWith(s.prepared.inputIds(), prefix, prefix.length) ? forks : alone).add(s);
        }
        if (forks.size() == 1) {
            alone.addAll(forks);
            forks.clear();
        }
        List<Part> made = new ArrayList<>();
        if (!forks.isEmpty()) {
            made.add(new Part(prefix, rows, model.newCache(own, prefix.length), g, null, forks));
        }
        for (Sequence s : alone) {
            s.cache = model.newCache(model.manager(), s.capacity());
            made.add(new Part(s.prepared.inputIds(), rows, s.cache, g, s, null));
        }
        return made;
    }

    /**
     * Each member of a finished image prefix gets a fork of its cache and a part for the rest of
     * its prompt, placed right after the prefix: ahead of any longer prompt still unfinished.
     */
    private void forkSuffixes(Part prefix) {
        int at = parts.indexOf(prefix) + 1;
        for (Sequence s : prefix.forks) {
            s.cache = prefix.cache.fork(model.manager(), s.capacity());
            int[] ids = s.prepared.inputIds();
            parts.add(at++, new Part(Arrays.copyOfRange(ids, prefix.ids.length, ids.length), null, s.cache, prefix.group, s, null));
        }
        prefix.cache.close();
    }

    /**
     * Prompt tokens a group's prefill runs: a shared image prefix once, then each member's own
     * suffix (what admission counts against a pass's room).
     */
    static int promptTokens(Group g, int imageEndId) {
        int[] lead = g.members().get(0).prepared.inputIds();
        int total = 0;
        for (Sequence s : g.members()) {
            total += s.prepared.inputIds().length;
        }
        if (g.members().size() > 1) {
            int prefix = imagePrefixLength(lead, imageEndId);
            for (int i = 1; i < g.members().size(); i++) {
                if (startsWith(g.members().get(i).prepared.inputIds(), lead, prefix)) {
                    total -= prefix;
                }
            }
        }
        return total;
    }

    /** Whether {@code ids} is longer than {@code length} and starts with {@code prefix}'s first {@code length} ids. */
    private static boolean startsWith(int[] ids, int[] prefix, int length) {
        return ids.length > length && Arrays.equals(ids, 0, length, prefix, 0, length);
    }

    /** The prompt ids every member shares: up to and including {@code </img>}. */
    private int[] sharedPrefix(Group g) {
        int[] lead = g.members().get(0).prepared.inputIds();
        int end = imagePrefixLength(lead, imageEndId);
        if (end == 0) {
            throw new IllegalStateException("a shared group without an image block");
        }
        return Arrays.copyOf(lead, end);
    }

    /** Ids up to and including the last {@code </img>}; 0 without an image block. */
    private static int imagePrefixLength(int[] ids, int imageEndId) {
        for (int i = ids.length - 1; i >= 0; i--) {
            if (ids[i] == imageEndId) {
                return i + 1;
            }
        }
        return 0;
    }
}

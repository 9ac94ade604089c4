package io.monostream.runtime;

import ai.djl.ndarray.NDManager;
import io.monostream.model.MonoInternVL;
import io.monostream.model.SequenceChunk;
import io.monostream.torch.NativeHeap;
import io.monostream.vision.PreprocessedImage;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The model thread's loop: continuous batching with shared image prefixes.
 *
 * <p>When no prefill is in progress, an iteration admits waiting groups while the batch has slots,
 * the KV budget has room and their prompts fit one prefill pass of {@code maxPrefillTokens} (a
 * group is one request, or several requests on the same image that share its prefill; the first
 * group is admitted whatever its length), to be prefilled together in passes of at most that many
 * tokens (a longer prompt in chunks, see {@link BatchedPrefill}). While a prefill is in progress,
 * groups whose prompts fit half a pass join it, ahead of its unfinished prompts, and a longer group
 * joins behind them once the next pass would reach it (short groups queued behind it pass it
 * meanwhile). Each iteration runs one pass of the prefill in progress, then one decode step
 * over every running sequence: a long prompt delays the running sequences' next token by one pass,
 * not by its whole prefill, and a short prompt that arrives during it waits for one pass, not for
 * its end, even behind another long prompt in the queue. A group whose prompts have run starts
 * decoding at once. A finished, expired or cancelled sequence leaves at once and frees its KV
 * reservation; a waiting one joins at the next iteration. A batch that fails is retried one group
 * or sequence at a time, so a bad request fails alone.
 */
final class ContinuousBatchScheduler implements Runnable {
    private static final Logger LOG = LoggerFactory.getLogger(ContinuousBatchScheduler.class);
    /** How long the engine waits idle after an image prefill before it gives free C heap back to the OS. */
    static final long IDLE_BEFORE_TRIM_MILLIS = 500;
    /**
     * Prefill passes' worth of tiles that may wait preprocessed in the queue (their pixels are on
     * the Java heap, 3 MB per 448 tile); beyond that the preprocessing thread waits for room.
     */
    static final int WAITING_IMAGE_PASSES = 4;

    /** Requests admitted together: several only when they share one image's prefill. */
    record Group(List<Sequence> members) {
        long reservedTokens() {
            long total = 0;
            for (Sequence s : members) {
                total += s.capacity();
            }
            return total;
        }
    }

    private final Generator generator;
    private final MonoInternVL model;
    private final int maxBatch;
    private final long kvBudgetBytes;
    private final int maxPrefillTokens;
    private final long waitingImageBound;
    private boolean closing;                // the engine is closing (under the lock)
    private final int threads;
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition work = lock.newCondition();
    private final Condition imageRoom = lock.newCondition(); // waiting images left the queue
    private final Deque<Group> waiting = new ArrayDeque<>();
    private final List<Sequence> running = new ArrayList<>();
    /** Admitted prefills not yet done, the first in progress (model thread only; more than one only after a split). */
    private final Deque<BatchedPrefill> prefills = new ArrayDeque<>();
    private volatile boolean stopping;
    private volatile int waitingCount;
    private volatile int runningCount;
    private volatile long kvReserved;

    // metrics
    private final AtomicLong completed = new AtomicLong();
    private final AtomicLong failed = new AtomicLong();
    private volatile int lastDecodeBatch;
    private volatile long decodeSteps;
    private volatile long interleavedDecodeSteps;
    private volatile long decodeRows;
    private float[] decodeLogits = new float[0]; // the decode steps' logits, reused (model thread only)
    private volatile long prefillTokens;
    private volatile long prefillPasses;
    private volatile int largestPrefillPass;
    private boolean trimPending;            // an image prefill freed memory since the last trim (model thread only)
    private volatile long heapTrims;
    private volatile long prefillNanos;
    private volatile long decodeTokens;
    private volatile long decodeNanos;
    private volatile long firstTokens;
    private volatile long firstTokenNanos;

    ContinuousBatchScheduler(Generator generator, int maxBatch, long kvBudgetBytes, int maxPrefillTokens, int threads) {
        this.generator = generator;
        this.model = generator.model();
        this.maxBatch = maxBatch;
        this.kvBudgetBytes = kvBudgetBytes;
        this.maxPrefillTokens = maxPrefillTokens;
        this.waitingImageBound = WAITING_IMAGE_PASSES * Math.max(1, maxPrefillTokens / model.tokensPerTile())
                * PreprocessedImage.tileHeapBytes(model.config().imageSize());
        this.threads = threads;
    }

    /** Queues a prepared group; it is refused at once if it could never fit the KV budget. */
    void enqueue(Group group) {
        long need = group.reservedTokens() * model.kvBytesPerToken();
        if (need > kvBudgetBytes) {
            fail(group.members(), new EngineException(FailureReason.INVALID_REQUEST, "the request needs "
                    + group.reservedTokens() + " tokens of KV cache (" + need / (1 << 20) + " MiB: prompt plus max_new_tokens) but the"
                    + " engine's KV budget is " + kvBudgetBytes / (1 << 20) + " MiB; lower max_new_tokens or max tiles"));
            return;
        }
        lock.lock();
        try {
            if (stopping) {
                fail(group.members(), new EngineException(FailureReason.ENGINE_CLOSED, "the engine closed"));
                return;
            }
            waiting.addLast(group);
            waitingCount = waiting.size();
            work.signalAll();
        } finally {
            lock.unlock();
        }
    }

    /**
     * Blocks the caller (the preprocessing thread, before it decodes a new image) while the images
     * waiting in the queue hold more than {@link #WAITING_IMAGE_PASSES} prefill passes' worth of
     * tiles on the heap, so a burst of images waits as encoded bytes rather than as pixels (a
     * queue of 64 images of 13 tiles would otherwise hold 2.5 GB). Returns once there is room, or
     * when the engine closes.
     */
    void awaitRoomForImage() throws InterruptedException {
        lock.lock();
        try {
            while (!stopping && !closing && waitingImageBytes() > waitingImageBound) {
                imageRoom.await(50, TimeUnit.MILLISECONDS); // also polls: a cancelled waiting request leaves at admission
            }
        } finally {
            lock.unlock();
        }
    }

    /** Heap bytes the distinct images of the waiting requests hold. Must hold the lock. */
    private long waitingImageBytes() {
        Set<PreprocessedImage> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        long total = 0;
        for (Group g : waiting) {
            for (Sequence s : g.members()) {
                PreprocessedImage image = s.prepared.image();
                if (image != null && seen.add(image)) {
                    total += image.heapBytes();
                }
            }
        }
        return total;
    }

    /** The engine is closing: the preprocessing thread no longer waits for room (what it still prepares is refused or run). */
    void closing() {
        lock.lock();
        try {
            closing = true;
            imageRoom.signalAll();
        } finally {
            lock.unlock();
        }
    }

    void stop() {
        lock.lock();
        try {
            stopping = true;
            work.signalAll();
            imageRoom.signalAll();
        } finally {
            lock.unlock();
        }
    }

    EngineStats stats(int inFlight) {
        double seconds = prefillNanos / 1e9;
        double decodeSeconds = decodeNanos / 1e9;
        return new EngineStats(inFlight, waitingCount, runningCount, completed.get(), failed.get(), lastDecodeBatch,
                decodeSteps == 0 ? 0 : (double) decodeRows / decodeSteps,
                prefillTokens,
                seconds == 0 ? 0 : prefillTokens / seconds,
                decodeTokens,
                decodeNanos,
                decodeSeconds == 0 ? 0 : decodeTokens / decodeSeconds,
                firstTokens == 0 ? 0 : firstTokenNanos / 1e6 / firstTokens,
                kvReserved, kvBudgetBytes, prefillPasses, largestPrefillPass, interleavedDecodeSteps);
    }

    /** How many times the idle engine has given free C heap memory back to the OS. */
    long heapTrims() {
        return heapTrims;
    }

    @Override
    public void run() {
        TorchRuntime.configureThread(threads);
        try {
            while (true) {
                Admitted admitted = admit();
                if (admitted == null) {
                    break;
                }
                try {
                    if (!admitted.isEmpty()) {
                        admitToPrefill(admitted);
                    }
                    if (!prefills.isEmpty()) {
                        prefillPass();
                    }
                    dropFinished();
                    if (!running.isEmpty()) {
                        if (!prefills.isEmpty()) {
                            interleavedDecodeSteps++;
                        }
                        decodeStep();
                        dropFinished();
                    }
                } catch (RuntimeException e) {
                    // a defect, not a request's fault: fail what is running or prefilling, keep serving
                    LOG.error("unexpected error in the model loop; failing {} running requests", running.size(), e);
                    releaseAndFail(new ArrayList<>(running), e);
                    while (!prefills.isEmpty()) {
                        BatchedPrefill job = prefills.removeFirst();
                        job.close();
                        job.groups().forEach(g -> releaseAndFail(g.members(), e));
                    }
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (Throwable t) {
            LOG.error("the engine's model thread stopped", t);
        } finally {
            EngineException closed = new EngineException(FailureReason.ENGINE_CLOSED, "the engine closed");
            fail(running, closed);
            running.clear();
            for (BatchedPrefill job : prefills) {
                job.close();
                job.groups().forEach(g -> fail(g.members(), closed));
            }
            prefills.clear();
            lock.lock();
            try {
                for (Group g : waiting) {
                    fail(g.members(), closed);
                }
                waiting.clear();
            } finally {
                lock.unlock();
            }
        }
    }

    /** The groups {@link #admit} took: to prefill ahead of the unfinished prompts and behind them. */
    private record Admitted(List<Group> ahead, List<Group> behind) {
        boolean isEmpty() {
            return ahead.isEmpty() && behind.isEmpty();
        }
    }

    /**
     * Groups to prefill now; blocks while there is nothing to do; null once stopping. Without a
     * prefill in progress, groups are admitted while their prompts fit one pass together (the first
     * whatever its length). While one is in progress, short groups (a prompt of at most half a
     * pass) are admitted while they fit half a pass together, to join it ahead of its unfinished
     * prompts (the prefill in progress keeps the other half); a longer group joins behind them once
     * the next pass would reach it, and until then lets the short groups behind it pass. Otherwise
     * admission is FIFO: a group without the slots, KV or room it needs blocks the ones behind it.
     */
    private Admitted admit() throws InterruptedException {
        List<Group> ahead = new ArrayList<>();
        List<Group> behind = new ArrayList<>();
        lock.lock();
        try {
            while (running.isEmpty() && waiting.isEmpty() && prefills.isEmpty() && !stopping) {
                if (!trimPending) {
                    work.await(100, TimeUnit.MILLISECONDS);
                } else if (!work.await(IDLE_BEFORE_TRIM_MILLIS, TimeUnit.MILLISECONDS)
                        && running.isEmpty() && waiting.isEmpty() && !stopping) {
                    trimPending = false;
                    lock.unlock(); // the trim takes 1-13 ms: submitters do not wait for it
                    try {
                        NativeHeap.trim();
                        heapTrims++;
                    } finally {
                        lock.lock();
                    }
                }
            }
            if (stopping) {
                return null;
            }
            BatchedPrefill inProgress = prefills.peekFirst();
            if (inProgress != null && !inProgress.acceptsMore()) {
                return new Admitted(ahead, behind); // a group retried alone after its batch failed takes no company
            }
            Instant now = Instant.now();
            int slots = maxBatch - running.size();
            for (BatchedPrefill p : prefills) {
                slots -= p.members();
            }
            boolean joining = inProgress != null;
            long prefillRoom = joining ? maxPrefillTokens / 2 : maxPrefillTokens;
            long backlog = joining ? inProgress.unfinishedTokens() : 0; // what runs before a group that joins behind
            Iterator<Group> it = waiting.iterator();
            while (it.hasNext()) {
                Group g = it.next();
                g.members().removeIf(s -> dropIfDone(s, now));
                if (g.members().isEmpty()) {
                    it.remove();
                    continue;
                }
                long need = g.reservedTokens() * model.kvBytesPerToken();
                // strict FIFO: a group that does not fit blocks the ones behind it (no starvation)
                if (g.members().size() > slots && (joining || !running.isEmpty() || !ahead.isEmpty())) {
                    break;
                }
                if (kvReserved + need > kvBudgetBytes) {
                    break;
                }
                int prompt = BatchedPrefill.promptTokens(g, generator.imageEndId());
                boolean joinsBehind = joining && prompt > maxPrefillTokens / 2;
                if (joinsBehind && backlog >= maxPrefillTokens) {
                    // it waits until the next pass would reach it, so that it holds no slot, KV or
                    // cache while prompts ahead of it run; the short groups behind it may pass it
                    // (the backlog shrinks by at least half a pass a pass, so it is not starved)
                    continue;
                }
                if (!joinsBehind && (joining || !ahead.isEmpty()) && prompt > prefillRoom) {
                    break;
                }
                it.remove();
                kvReserved += need;
                slots -= g.members().size();
                backlog += prompt;
                if (joinsBehind) {
                    behind.add(g);
                } else {
                    prefillRoom -= prompt;
                    ahead.add(g);
                }
            }
            if (!ahead.isEmpty()) {
                slots = joinSameImage(ahead, slots);
            }
            if (!behind.isEmpty()) {
                slots = joinSameImage(behind, slots);
            }
            waitingCount = waiting.size();
            imageRoom.signalAll();
        } finally {
            lock.unlock();
        }
        return new Admitted(ahead, behind);
    }

    /**
     * Pulls waiting requests on an image that an admitted group also uses (the same preprocessed
     * image: e.g. the caption and OCR tasks of one event, submitted one after the other) into that
     * group, so they share its prefill. Must hold the lock. Returns the slots left.
     */
    private int joinSameImage(List<Group> admitted, int slots) {
        Iterator<Group> it = waiting.iterator();
        while (it.hasNext() && slots > 0) {
            Group w = it.next();
            PreprocessedImage image = w.members().get(0).prepared.image();
            if (image == null || w.members().size() > slots) {
                continue;
            }
            for (int i = 0; i < admitted.size(); i++) {
                Group a = admitted.get(i);
                if (a.members().get(0).prepared.image() != image) {
                    continue;
                }
                long need = w.reservedTokens() * model.kvBytesPerToken();
                if (kvReserved + need > kvBudgetBytes) {
                    return slots;
                }
                it.remove();
                kvReserved += need;
                slots -= w.members().size();
                List<Sequence> merged = new ArrayList<>(a.members());
                merged.addAll(w.members());
                admitted.set(i, new Group(merged));
                break;
            }
        }
        waitingCount = waiting.size();
        return slots;
    }

    /** Completes a waiting sequence whose deadline passed or whose caller cancelled; true if so. */
    private boolean dropIfDone(Sequence s, Instant now) {
        if (s.future.isDone()) {
            return true;
        }
        if (s.expired(now)) {
            failOne(s, new EngineException(FailureReason.MODEL_TIMEOUT,
                    "request " + s.request().requestId() + " reached its deadline while queued"));
            return true;
        }
        return false;
    }

    // ---------------------------------------------------------------- prefill

    /**
     * Runs the next pass of the prefill in progress. The groups whose prompts have all run take
     * their first token and join the running ones. Groups whose every member was cancelled or
     * reached its deadline are dropped between passes, freeing their KV reservation. A prefill of
     * several groups that fails is split and retried one group at a time, so a bad request fails
     * alone.
     */
    private void prefillPass() {
        BatchedPrefill job = prefills.peekFirst();
        dropDoneGroups(job);
        if (job.groups().isEmpty()) {
            prefills.removeFirst().close();
            return;
        }
        long start = System.nanoTime();
        int ran;
        try {
            ran = job.runPass();
        } catch (RuntimeException | OutOfMemoryError e) {
            prefills.removeFirst().close();
            List<Group> groups = job.groups();
            if (groups.size() == 1) {
                releaseAndFail(groups.get(0).members(), e);
            } else {
                LOG.warn("batched prefill of {} groups failed ({}); retrying them one by one", groups.size(), e.toString());
                for (int i = groups.size() - 1; i >= 0; i--) {
                    for (Sequence s : groups.get(i).members()) {
                        s.closeCache();
                        s.prefillStartNanos = 0; // its prefill starts again with its retry's first pass
                    }
                    prefills.addFirst(new BatchedPrefill(model, maxPrefillTokens, generator.imageEndId(), List.of(groups.get(i)), false));
                }
            }
            return;
        }
        long end = System.nanoTime();
        prefillPasses++;
        largestPrefillPass = Math.max(largestPrefillPass, ran);
        prefillTokens += ran;
        prefillNanos += end - start;
        for (Group g : job.takeFinished()) {
            startDecoding(g, end);
        }
        if (job.groups().isEmpty()) {
            prefills.removeFirst().close();
            // an image prefill frees hundreds of MB of activations into malloc arenas that glibc
            // keeps; they go back to the OS once the engine is idle (admit), not after every
            // prefill: the next prefill would fault all of them in again (mid-size model, 5 tiles:
            // 20 % of its time)
            if (job.tokens() >= model.tokensPerTile()) {
                trimPending = true;
            }
        }
    }

    /** Admitted groups join the prefill in progress, or start one (only ever with groups ahead). */
    private void admitToPrefill(Admitted admitted) {
        BatchedPrefill inProgress = prefills.peekFirst();
        if (inProgress != null) {
            inProgress.join(admitted.ahead(), admitted.behind());
        } else {
            prefills.addLast(new BatchedPrefill(model, maxPrefillTokens, generator.imageEndId(), admitted.ahead(), true));
        }
    }

    /** A group whose prompts have all run: its sequences take their first token and join the running ones. */
    private void startDecoding(Group g, long end) {
        for (Sequence s : g.members()) {
            s.prefillNanos = end - s.prefillStartNanos;
            s.decodeStartNanos = end;
            firstTokens++;
            firstTokenNanos += end - s.submittedNanos;
            accept(s, s.firstLogits);
            running.add(s);
        }
        runningCount = running.size();
    }

    /** Drops the prefill's groups whose every member was cancelled or reached its deadline. */
    private void dropDoneGroups(BatchedPrefill job) {
        Instant now = Instant.now();
        for (Group g : new ArrayList<>(job.groups())) {
            boolean allDone = true;
            for (Sequence s : g.members()) {
                allDone &= s.future.isDone() || s.expired(now);
            }
            if (!allDone) {
                continue;
            }
            job.abandon(g);
            for (Sequence s : g.members()) {
                release(s);
                failOne(s, new EngineException(FailureReason.MODEL_TIMEOUT,
                        "request " + s.request().requestId() + " reached its deadline "
                                + (s.prefillStartNanos == 0 ? "while waiting for its prefill" : "during its prefill")));
            }
        }
    }

    // ---------------------------------------------------------------- decode

    private void decodeStep() {
        List<Sequence> batch = new ArrayList<>(running);
        long start = System.nanoTime();
        try {
            decodeTogether(batch);
        } catch (RuntimeException | OutOfMemoryError e) {
            if (batch.size() == 1) {
                releaseAndFail(batch, e);
            } else {
                LOG.warn("batched decode of {} sequences failed ({}); retrying them one by one", batch.size(), e.toString());
                for (Sequence s : batch) {
                    try {
                        decodeTogether(List.of(s));
                    } catch (RuntimeException | OutOfMemoryError e2) {
                        releaseAndFail(List.of(s), e2);
                    }
                }
            }
        }
        decodeNanos += System.nanoTime() - start;
        decodeSteps++;
        decodeRows += batch.size();
        lastDecodeBatch = batch.size();
    }

    private void decodeTogether(List<Sequence> batch) {
        List<SequenceChunk> chunks = new ArrayList<>(batch.size());
        for (Sequence s : batch) {
            chunks.add(SequenceChunk.text(new int[] {s.pending}, s.cache));
        }
        int vocab = model.config().llm().vocabSize();
        if (decodeLogits.length < batch.size() * vocab) {
            decodeLogits = new float[Math.max(batch.size(), maxBatch) * vocab];
        }
        float[] logits = decodeLogits;
        // the whole step in one native call into the reused buffer, when the model has it
        if (!model.decode(chunks, logits)) {
            try (NDManager step = model.manager().newSubManager()) {
                logits = model.logits(model.forward(step, chunks)).toFloatArray();
            }
        }
        for (int i = 0; i < batch.size(); i++) {
            decodeTokens++;
            accept(batch.get(i), logits, i * vocab, vocab);
        }
    }

    /** Samples the next token of a sequence and records whether it is finished. */
    private void accept(Sequence s, float[] logits) {
        accept(s, logits, 0, logits.length);
    }

    /** {@link #accept(Sequence, float[])} on logits[from .. from + vocab) of a batch's logits. */
    private void accept(Sequence s, float[] logits, int from, int vocab) {
        int next = s.sampler.next(logits, from, vocab);
        s.generated[s.count++] = next;
        s.pending = next;
        if (generator.isStop(next) && !s.request().ignoreStopTokens()) {
            s.stopReason = "stop_token";
        } else if (s.count == s.generated.length) {
            s.stopReason = "max_new_tokens";
        }
    }

    /** Completes finished, expired and cancelled sequences and frees their KV memory. */
    private void dropFinished() {
        Instant now = Instant.now();
        long end = System.nanoTime();
        Iterator<Sequence> it = running.iterator();
        while (it.hasNext()) {
            Sequence s = it.next();
            if (s.stopReason != null) {
                release(s);
                it.remove();
                try {
                    GenerationResult result = generator.result(s, end);
                    completed.incrementAndGet();
                    s.future.complete(result);
                } catch (RuntimeException e) {
                    failOne(s, new EngineException(FailureReason.MODEL_ERROR,
                            "could not decode the output of request " + s.request().requestId() + ": " + e, e));
                }
            } else if (s.future.isDone()) {
                release(s); // cancelled by the caller
                it.remove();
            } else if (s.expired(now)) {
                release(s);
                it.remove();
                failOne(s, new EngineException(FailureReason.MODEL_TIMEOUT, "request " + s.request().requestId()
                        + " reached its deadline after " + s.count + " generated tokens"));
            }
        }
        runningCount = running.size();
    }

    private void release(Sequence s) {
        s.closeCache();
        lock.lock();
        try {
            kvReserved -= (long) s.capacity() * model.kvBytesPerToken();
            work.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private void releaseAndFail(List<Sequence> members, Throwable cause) {
        for (Sequence s : members) {
            running.remove(s);
            release(s);
            LOG.warn("request {} failed in the model", s.request().requestId(), cause);
            failOne(s, new EngineException(FailureReason.MODEL_ERROR,
                    "model error on request " + s.request().requestId() + ": " + cause, cause));
        }
        runningCount = running.size();
    }

    private void fail(List<Sequence> members, EngineException e) {
        for (Sequence s : members) {
            s.closeCache();
            failOne(s, e);
        }
    }

    private void failOne(Sequence s, Throwable e) {
        if (s.future.completeExceptionally(e)) {
            failed.incrementAndGet();
        }
    }
}

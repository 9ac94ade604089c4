package io.monostream.runtime;

import io.monostream.prompt.Task;
import io.monostream.testing.TestModels;
import io.monostream.vision.ImageRejectedException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The scheduler's contract: batching and forking change no greedy token, failures stay with
 * their request, deadlines and cancellation free KV memory, the queue and KV budget refuse what
 * does not fit, and many threads may submit at once.
 */
class ContinuousBatchSchedulerTest {
    private static byte[] square;
    private static byte[] wide;
    private static byte[] small;
    /** One request at a time, each prompt in one pass: the reference the batched and chunked runs must match. */
    private static Engine serial;

    @BeforeAll
    static void open() throws Exception {
        square = Files.readAllBytes(TestModels.image("square-448.png"));
        wide = Files.readAllBytes(TestModels.image("wide-700x500.png"));
        small = Files.readAllBytes(TestModels.image("small-37x23.png"));
        serial = Engine.open(options().maxBatch(1).maxPrefillTokens(1 << 20).build()); // each prompt in one pass
    }

    @AfterAll
    static void close() {
        serial.close();
    }

    private static EngineOptions.Builder options() {
        return EngineOptions.builder(TestModels.model("tiny-v2")).threads(2);
    }

    private static List<GenerationRequest> mixedRequests() {
        List<GenerationRequest> requests = new ArrayList<>();
        byte[][] images = {square, wide, small, null};
        String[] questions = {"Describe the image.", "What is written?", "Read the text.", "Hello there"};
        for (int i = 0; i < 8; i++) {
            GenerationRequest.Builder b = GenerationRequest.builder("r" + i)
                    .question(questions[i % questions.length]).maxNewTokens(6 + i);
            if (images[i % images.length] != null) {
                b.image(images[i % images.length]).maxTiles(1 + i % 3);
            }
            requests.add(b.build());
        }
        return requests;
    }

    /** "Hi", 3 new tokens: the short prompt that joins a long prefill in progress. */
    private static GenerationRequest shortRequest() {
        return GenerationRequest.builder("short").question("Hi").maxNewTokens(3).build();
    }

    /** A prefill budget whose half holds {@code shortAlone}'s prompt: newcomers may take half a pass. */
    private static int halfPassHolding(GenerationResult shortAlone) {
        return 2 * shortAlone.promptTokens() + 2;
    }

    /** A request on the wide image, 2 new tokens: at {@code maxTiles} 12, a prompt of many small passes. */
    private static GenerationRequest wideRequest(String id, int maxTiles, String question) {
        return GenerationRequest.builder(id).image(wide).maxTiles(maxTiles).question(question).maxNewTokens(2).build();
    }

    private static GenerationResult join(CompletableFuture<GenerationResult> f) {
        return f.orTimeout(2, TimeUnit.MINUTES).join();
    }

    private static Throwable failure(CompletableFuture<GenerationResult> f) {
        CompletionException e = assertThrows(CompletionException.class, () -> f.orTimeout(2, TimeUnit.MINUTES).join());
        return e.getCause();
    }

    @Test
    void batchedRequestsGiveTheSameTokensAsOneAtATime() {
        List<GenerationRequest> requests = mixedRequests();
        try (Engine batched = Engine.open(options().maxBatch(8).build())) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (GenerationRequest r : requests) {
                futures.add(batched.submit(r));
            }
            for (int i = 0; i < requests.size(); i++) {
                GenerationResult alone = serial.generateNow(requests.get(i));
                GenerationResult together = join(futures.get(i));
                assertArrayEquals(alone.generatedIds(), together.generatedIds(), requests.get(i).requestId());
                assertEquals(alone.text(), together.text());
            }
            assertTrue(batched.stats().meanDecodeBatch() > 1.5, "decode steps were batched: " + batched.stats());
            assertEquals(0, batched.stats().kvBytesReserved());
        }
    }

    @Test
    void prefillPassesStayWithinTheirBudgetAndChunkingChangesNoToken() {
        List<GenerationRequest> requests = new ArrayList<>(mixedRequests());
        requests.add(GenerationRequest.builder("fork-c").image(square).maxTiles(2).task(Task.CAPTION).maxNewTokens(6).build());
        requests.add(GenerationRequest.builder("fork-o").image(square).maxTiles(2).task(Task.OCR).maxNewTokens(6).build());
        int budget = 100; // under one tile's 256 image tokens: every image prompt is chunked, its tiles embedded one at a time
        try (Engine chunked = Engine.open(options().maxBatch(8).maxPrefillTokens(budget).build())) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (GenerationRequest r : requests.subList(0, requests.size() - 2)) {
                futures.add(chunked.submit(r));
            }
            futures.addAll(chunked.submitAll(requests.subList(requests.size() - 2, requests.size())));
            long promptTokens = 0;
            for (int i = 0; i < requests.size(); i++) {
                GenerationResult alone = serial.generateNow(requests.get(i));
                GenerationResult inPasses = join(futures.get(i));
                assertArrayEquals(alone.generatedIds(), inPasses.generatedIds(), requests.get(i).requestId());
                assertEquals(alone.text(), inPasses.text());
                promptTokens += alone.promptTokens();
            }
            EngineStats stats = chunked.stats();
            assertTrue(stats.largestPrefillPass() <= budget && stats.largestPrefillPass() > budget / 2, stats.toString());
            assertTrue(stats.prefillPasses() >= stats.prefillTokens() / budget, stats.toString());
            assertTrue(stats.prefillTokens() < promptTokens, "the caption and OCR pair shared its image prefix: " + stats);
            assertTrue(stats.interleavedDecodeSteps() > 0, "running sequences decoded between the passes of later prompts: " + stats);
            assertEquals(0, stats.kvBytesReserved());
        }
        EngineStats reference = serial.stats();
        assertTrue(reference.largestPrefillPass() > budget, "the reference ran whole prompts: " + reference);
    }

    /**
     * Starts a sequence that generates until it is cancelled (the most tokens a request may ask
     * for): it is running throughout what a test does next, if the test submits what it then
     * waits for without preprocessing it again.
     */
    private static CompletableFuture<GenerationResult> startEndless(Engine engine) throws InterruptedException {
        long decodedBefore = engine.stats().decodeTokens();
        CompletableFuture<GenerationResult> f = engine.submit(GenerationRequest.builder("endless").question("Hello there")
                .maxNewTokens(4096).ignoreStopTokens(true).build());
        // until its first decode step (a request that just completed may still count as running for a moment)
        waitFor(() -> engine.stats().decodeTokens() > decodedBefore || f.isDone(), 1);
        if (f.isDone()) {
            throw new AssertionError("the endless request ended", failure(f));
        }
        return f;
    }

    /**
     * A prompt longer than one prefill pass is prefilled a pass at a time, and the sequence
     * already generating takes a decode step after every pass but the last, instead of waiting
     * for the whole prompt; the long prompt's tokens do not change.
     */
    @Test
    void decodeStepsRunBetweenThePassesOfALongPrefill() throws Exception {
        int budget = 32;
        GenerationRequest image = GenerationRequest.builder("long").image(wide).maxTiles(2)
                .question("Describe the image.").maxNewTokens(4).build();
        GenerationResult alone = serial.generateNow(image);
        int passes = (alone.promptTokens() + budget - 1) / budget;
        assertTrue(passes > 4, "the prompt needs several passes: " + alone.promptTokens());
        try (Engine engine = Engine.open(options().maxBatch(8).maxPrefillTokens(budget).build())) {
            // preprocesses the image once: the request below is then queued at once, from the engine's recent images
            engine.generateNow(image);
            CompletableFuture<GenerationResult> running = startEndless(engine);
            GenerationResult interleaved = join(engine.submit(image));
            EngineStats stats = engine.stats();
            assertFalse(running.isDone(), "the text request was running throughout");
            assertEquals(passes - 1, stats.interleavedDecodeSteps(), stats.toString());
            assertArrayEquals(alone.generatedIds(), interleaved.generatedIds());
            running.cancel(true);
            waitFor(() -> engine.stats().kvBytesReserved() == 0);
        }
    }

    /**
     * A short prompt that arrives while a long one is prefilled joins the prefill in progress: it
     * runs in the next pass, ahead of the long prompt's rest, and decodes (here: finishes) before
     * the long prompt's last pass; neither's tokens change, and no pass is over its budget.
     */
    @Test
    void aShortPromptArrivingDuringALongPrefillIsPrefilledInTheNextPass() throws Exception {
        GenerationRequest shortOne = shortRequest();
        GenerationResult shortAlone = serial.generateNow(shortOne);
        int budget = halfPassHolding(shortAlone);
        GenerationRequest longOne = wideRequest("long", 12, "Describe the image.");
        GenerationResult longAlone = serial.generateNow(longOne);
        int passes = (longAlone.promptTokens() + budget - 1) / budget;
        assertTrue(passes > 15, "the long prompt needs many passes: " + passes);
        try (Engine engine = Engine.open(options().maxBatch(8).maxPrefillTokens(budget).build())) {
            engine.generateNow(longOne); // preprocessed once: queued at once below, from the engine's recent images
            long passesBefore = engine.stats().prefillPasses();
            // the long prompt is admitted first and alone (the short one does not fit the rest of
            // its pass), so the short one arrives while the long one is prefilled
            CompletableFuture<GenerationResult> longFuture = engine.submit(longOne);
            GenerationResult shortResult = join(engine.submit(shortOne));
            assertFalse(longFuture.isDone(), "the long request was done before the short one that arrived during its prefill");
            long passesWhenShortFinished = engine.stats().prefillPasses() - passesBefore;
            assertTrue(passesWhenShortFinished < passes, passesWhenShortFinished + " of " + passes + " passes");
            assertArrayEquals(shortAlone.generatedIds(), shortResult.generatedIds());
            assertArrayEquals(longAlone.generatedIds(), join(longFuture).generatedIds());
            EngineStats stats = engine.stats();
            assertTrue(stats.largestPrefillPass() <= budget, stats.toString());
            waitFor(() -> engine.stats().kvBytesReserved() == 0);
        }
    }

    /**
     * A long prompt that arrives during another long prefill waits in the queue until the next
     * pass would reach it, then joins behind the unfinished prompt instead of waiting for its end:
     * it fills the room the other one's last pass leaves, so every pass but the last is full.
     * Meanwhile it holds back neither a batch slot nor KV memory, nor the short prompt queued
     * behind it, which is prefilled in the next pass. The earlier long prompt still finishes first.
     * The second one's wait is reported as queue time, not as prefill.
     */
    @Test
    void aLongPromptArrivingDuringALongPrefillJoinsBehindItAndBlocksNoShortOne() throws Exception {
        GenerationRequest shortOne = shortRequest();
        GenerationResult shortAlone = serial.generateNow(shortOne);
        int budget = halfPassHolding(shortAlone);
        GenerationRequest first = wideRequest("first", 12, "Describe the image.");
        GenerationRequest second = wideRequest("second", 6, "What is written?");
        GenerationResult firstAlone = serial.generateNow(first);
        GenerationResult secondAlone = serial.generateNow(second);
        assertTrue(secondAlone.promptTokens() > budget / 2, "the second prompt is long: " + secondAlone.promptTokens());
        int total = firstAlone.promptTokens() + secondAlone.promptTokens() + shortAlone.promptTokens();
        try (Engine engine = Engine.open(options().maxBatch(8).maxPrefillTokens(budget).build())) {
            engine.generateNow(first); // both images preprocessed once: queued at once below, from the recent images
            engine.generateNow(second);
            long passesBefore = engine.stats().prefillPasses();
            Queue<String> finished = new ConcurrentLinkedQueue<>(); // in the order the requests complete
            long firstSubmitted = System.nanoTime();
            CompletableFuture<GenerationResult> firstFuture = engine.submit(first);
            firstFuture.thenRun(() -> finished.add("first"));
            waitFor(() -> engine.stats().prefillPasses() > passesBefore, 1);
            long secondSubmitted = System.nanoTime();
            CompletableFuture<GenerationResult> secondFuture = engine.submit(second);
            secondFuture.thenRun(() -> finished.add("second"));
            CompletableFuture<GenerationResult> shortFuture = engine.submit(shortOne);
            shortFuture.thenRun(() -> finished.add("short"));
            GenerationResult shortResult = join(shortFuture);
            assertFalse(firstFuture.isDone(), "the short request waited for the first long prefill to end");
            assertEquals(1, engine.stats().waiting(), "the second long request waits in the queue: " + engine.stats());
            assertArrayEquals(shortAlone.generatedIds(), shortResult.generatedIds());
            GenerationResult firstResult = join(firstFuture);
            GenerationResult secondResult = join(secondFuture);
            assertArrayEquals(firstAlone.generatedIds(), firstResult.generatedIds());
            assertArrayEquals(secondAlone.generatedIds(), secondResult.generatedIds());
            // the second one's first pass is the first one's last: its prefill starts near the end of the first's
            Timings a = firstResult.timings();
            Timings b = secondResult.timings();
            long firstStart = firstSubmitted + a.queueNanos() + a.preprocessNanos();
            long firstEnd = firstStart + a.prefillNanos();
            long secondStart = secondSubmitted + b.queueNanos() + b.preprocessNanos();
            assertTrue(secondStart > (firstStart + firstEnd) / 2 && secondStart < firstEnd, "the second prefill started "
                    + (secondStart - firstStart) / 1e6 + " ms into the first, which took " + a.prefillNanos() / 1e6 + " ms");
            assertEquals(List.of("short", "first", "second"), List.copyOf(finished));
            EngineStats stats = engine.stats();
            assertEquals((total + budget - 1) / budget, stats.prefillPasses() - passesBefore,
                    "passes for " + total + " prompt tokens in passes of " + budget + ": " + stats);
            assertTrue(stats.largestPrefillPass() <= budget, stats.toString());
            waitFor(() -> engine.stats().kvBytesReserved() == 0);
        }
    }

    /**
     * A request cancelled while its prompt is prefilled pass by pass frees its KV memory between
     * two passes (a sequence decodes beside it, which also spaces the passes out; the tiny model
     * may finish even 4096 tokens during them, so nothing here depends on it still running).
     */
    @Test
    void aRequestCancelledDuringItsPrefillLeavesBeforeItsLastPass() throws Exception {
        int budget = 4;
        GenerationRequest image = GenerationRequest.builder("cancelled").image(wide).maxTiles(6)
                .question("Describe the image.").maxNewTokens(8).build();
        try (Engine engine = Engine.open(options().maxBatch(8).maxPrefillTokens(budget).build())) {
            int passes = (engine.generateNow(image).promptTokens() + budget - 1) / budget; // and the image is preprocessed once
            CompletableFuture<GenerationResult> running = startEndless(engine);
            long textReservation = engine.stats().kvBytesReserved();
            long passesBefore = engine.stats().prefillPasses();
            CompletableFuture<GenerationResult> cancelled = engine.submit(image);
            waitFor(() -> engine.stats().prefillPasses() > passesBefore + 2, 1);
            cancelled.cancel(true);
            // the image's reservation is gone, whether the text's is still held or not
            waitFor(() -> engine.stats().kvBytesReserved() == textReservation || engine.stats().kvBytesReserved() == 0);
            long ran = engine.stats().prefillPasses() - passesBefore;
            assertTrue(ran < passes, "it stopped after " + ran + " passes; its whole prompt takes " + passes);
            running.cancel(true);
            waitFor(() -> engine.stats().kvBytesReserved() == 0);
        }
    }

    /**
     * A request whose deadline passes while its prompt is prefilled pass by pass fails then, with
     * MODEL_TIMEOUT, instead of after its last pass, and frees its KV memory (the deadline is half
     * the time the same prefill took just before).
     */
    @Test
    void aRequestWhoseDeadlinePassesDuringItsPrefillFailsBetweenTwoPasses() throws Exception {
        int budget = 4;
        GenerationRequest.Builder image = GenerationRequest.builder("late").image(wide).maxTiles(6)
                .question("Describe the image.").maxNewTokens(8);
        try (Engine engine = Engine.open(options().maxBatch(8).maxPrefillTokens(budget).build())) {
            engine.generateNow(image.build()); // warm-up; the image is preprocessed once
            long prefillNanos = engine.generateNow(image.build()).timings().prefillNanos();
            CompletableFuture<GenerationResult> late = engine.submit(
                    image.deadline(Instant.now().plusNanos(prefillNanos / 2)).build());
            EngineException timeout = assertInstanceOf(EngineException.class, failure(late));
            assertEquals(FailureReason.MODEL_TIMEOUT, timeout.reason());
            assertTrue(timeout.getMessage().contains("during its prefill"), timeout.getMessage());
            waitFor(() -> engine.stats().kvBytesReserved() == 0);
        }
    }

    @Test
    void requestsArePrefilledTogetherOnlyWhileTheirPromptsFitOnePass() {
        int prompt = serial.generateNow(GenerationRequest.builder("probe").image(square).maxTiles(1).question("Describe the image.")
                .maxNewTokens(1).build()).promptTokens();
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            requests.add(GenerationRequest.builder("p" + i).image(i % 2 == 0 ? square : wide).maxTiles(1)
                    .question("Describe the image.").maxNewTokens(2).build());
        }
        // room for two of these prompts in a pass, not three
        try (Engine engine = Engine.open(options().maxBatch(8).maxPrefillTokens(2 * prompt + prompt / 2).build())) {
            List<CompletableFuture<GenerationResult>> futures = requests.stream().map(engine::submit).toList();
            for (int i = 0; i < requests.size(); i++) {
                assertArrayEquals(serial.generateNow(requests.get(i)).generatedIds(), join(futures.get(i)).generatedIds());
            }
            EngineStats stats = engine.stats();
            assertTrue(stats.largestPrefillPass() <= 2 * prompt + prompt / 2, stats.toString());
            assertTrue(stats.prefillPasses() >= 2, stats.toString());
        }
    }

    @Test
    void captionAndOcrOfOneImageForkFromOnePrefillAndMatchSeparateRequests() {
        List<GenerationRequest> tasks = List.of(
                GenerationRequest.builder("c").image(wide).task(Task.CAPTION).maxNewTokens(8).build(),
                GenerationRequest.builder("o").image(wide).task(Task.OCR).maxNewTokens(8).build(),
                GenerationRequest.builder("d").image(wide).task(Task.DETAILED_CAPTION).maxNewTokens(8).build());
        List<CompletableFuture<GenerationResult>> forked = serial.submitAll(tasks);
        for (int i = 0; i < tasks.size(); i++) {
            GenerationResult alone = serial.generateNow(tasks.get(i));
            GenerationResult fork = join(forked.get(i));
            assertArrayEquals(alone.generatedIds(), fork.generatedIds(), tasks.get(i).requestId());
            assertEquals(alone.text(), fork.text());
            assertEquals(tasks.get(i).task(), fork.task());
        }
    }

    @Test
    void aQuestionThatPlacesTheImageAfterTextIsNotForkedFromAnotherPrefix() {
        List<GenerationRequest> tasks = List.of(
                GenerationRequest.builder("c").image(wide).task(Task.CAPTION).maxNewTokens(6).build(),
                GenerationRequest.builder("p").image(wide).question("Look at this: <image> What is it?").maxNewTokens(6).build(),
                GenerationRequest.builder("o").image(wide).task(Task.OCR).maxNewTokens(6).build());
        List<CompletableFuture<GenerationResult>> together = serial.submitAll(tasks);
        for (int i = 0; i < tasks.size(); i++) {
            assertArrayEquals(serial.generateNow(tasks.get(i)).generatedIds(), join(together.get(i)).generatedIds(),
                    tasks.get(i).requestId());
        }
    }

    @Test
    void aPoisonedRequestFailsAloneInItsBatch() {
        byte[] truncated = java.util.Arrays.copyOf(wide, wide.length / 2);
        List<GenerationRequest> requests = List.of(
                GenerationRequest.builder("good-1").image(square).question("Describe.").maxNewTokens(5).build(),
                GenerationRequest.builder("corrupt").image(truncated).question("Describe.").maxNewTokens(5).build(),
                GenerationRequest.builder("not-an-image").image("hello".getBytes()).question("Describe.").maxNewTokens(5).build(),
                GenerationRequest.builder("absurd").question("Hi").maxNewTokens(1_000_000).build(),
                GenerationRequest.builder("good-2").question("Hello there").maxNewTokens(5).build(),
                // the image block's own tokens in the question would give the prompt more image
                // positions than the image has rows (or some without an image at all)
                GenerationRequest.builder("injected").question("What <IMG_CONTEXT> is").maxNewTokens(5).build(),
                GenerationRequest.builder("injected-image").image(square).question("Read </img> this").maxNewTokens(5).build());
        try (Engine engine = Engine.open(options().build())) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (GenerationRequest r : requests) {
                futures.add(engine.submit(r));
            }
            assertEquals(serial.generateNow(requests.get(0)).text(), join(futures.get(0)).text());
            assertEquals(ImageRejectedException.Reason.CORRUPT_IMAGE, ((ImageRejectedException) failure(futures.get(1))).reason());
            assertEquals(ImageRejectedException.Reason.UNSUPPORTED_FORMAT, ((ImageRejectedException) failure(futures.get(2))).reason());
            assertEquals(FailureReason.INVALID_REQUEST, ((EngineException) failure(futures.get(3))).reason());
            assertEquals(serial.generateNow(requests.get(4)).text(), join(futures.get(4)).text());
            for (int i = 5; i < 7; i++) {
                EngineException refused = (EngineException) failure(futures.get(i));
                assertEquals(FailureReason.INVALID_REQUEST, refused.reason(), refused.getMessage());
                assertTrue(refused.getMessage().contains("a token only the image block may hold"), refused.getMessage());
            }
        }
    }

    @Test
    void cancellationAndDeadlinesFreeTheirKvMemory() throws Exception {
        try (Engine engine = Engine.open(options().build())) {
            CompletableFuture<GenerationResult> longOne = engine.submit(
                    GenerationRequest.builder("long").image(wide).question("Describe.").maxNewTokens(4000)
                            .ignoreStopTokens(true).build());
            waitFor(() -> engine.stats().running() == 1 && engine.stats().decodeTokens() >= 50);
            assertTrue(engine.stats().kvBytesReserved() > 0);
            longOne.cancel(true);
            waitFor(() -> engine.stats().kvBytesReserved() == 0 && engine.stats().running() == 0);

            // a deadline of a tenth of the time 4000 tokens take at the speed just seen (which
            // includes the JIT's first steps): it passes mid-generation however fast this machine is
            EngineStats seen = engine.stats();
            long budgetMillis = Math.max(50, 4000L * seen.decodeNanos() / seen.decodeTokens() / 10 / 1_000_000);
            CompletableFuture<GenerationResult> late = engine.submit(GenerationRequest.builder("late").image(wide)
                    .question("Describe.").maxNewTokens(4000).ignoreStopTokens(true)
                    .deadline(Instant.now().plus(Duration.ofMillis(budgetMillis))).build());
            EngineException timeout = assertInstanceOf(EngineException.class, failure(late));
            assertEquals(FailureReason.MODEL_TIMEOUT, timeout.reason());
            waitFor(() -> engine.stats().kvBytesReserved() == 0);

            CompletableFuture<GenerationResult> expired = engine.submit(GenerationRequest.builder("expired")
                    .question("Hi").deadline(Instant.now().minusSeconds(1)).build());
            assertEquals(FailureReason.MODEL_TIMEOUT, ((EngineException) failure(expired)).reason());
        }
    }

    @Test
    void theQueueRefusesBeyondItsBoundAndTheKvBudgetRefusesWhatCanNeverFit() {
        try (Engine engine = Engine.open(options().queueCapacity(2).build())) {
            List<CompletableFuture<GenerationResult>> futures = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                futures.add(engine.submit(GenerationRequest.builder("q" + i).image(wide).question("Describe.").maxNewTokens(20).build()));
            }
            long overloaded = futures.stream().filter(f -> f.isCompletedExceptionally()
                    && failure(f) instanceof EngineException e && e.reason() == FailureReason.OVERLOADED).count();
            assertEquals(4, overloaded);
            assertTrue(((EngineException) failure(futures.get(5))).transientFailure());
            futures.subList(0, 2).forEach(ContinuousBatchSchedulerTest::join);
        }
        long tiny = 64L * 1024; // a few tokens of KV
        try (Engine engine = Engine.open(options().kvCacheBytes(tiny).build())) {
            EngineException e = (EngineException) failure(engine.submit(
                    GenerationRequest.builder("huge").image(wide).question("Describe.").maxNewTokens(10).build()));
            assertEquals(FailureReason.INVALID_REQUEST, e.reason());
            assertTrue(e.getMessage().contains("KV"), e.getMessage());
        }
    }

    @Test
    void manyThreadsMaySubmitAtOnce() throws Exception {
        List<GenerationRequest> requests = mixedRequests();
        List<GenerationResult> expected = requests.stream().map(serial::generateNow).toList();
        ExecutorService pool = Executors.newFixedThreadPool(8);
        try (Engine engine = Engine.open(options().queueCapacity(64).build())) {
            List<Future<GenerationResult>> results = new ArrayList<>();
            for (int t = 0; t < 3; t++) {
                for (GenerationRequest r : requests) {
                    results.add(pool.submit(() -> engine.submit(r).get(2, TimeUnit.MINUTES)));
                }
            }
            for (int i = 0; i < results.size(); i++) {
                assertArrayEquals(expected.get(i % requests.size()).generatedIds(), results.get(i).get().generatedIds());
            }
        } finally {
            pool.shutdownNow();
        }
    }

    /**
     * A burst of images waits as encoded bytes once the queue holds {@code WAITING_IMAGE_PASSES}
     * prefill passes' worth of preprocessed tiles: with passes of 256 tokens (one tile), at most 4
     * one-tile images wait preprocessed, plus the one prepared while the last left. Every request
     * still gets its answer.
     */
    @Test
    void preprocessedImagesWaitingInTheQueueAreBounded() throws Exception {
        List<GenerationRequest> requests = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            requests.add(GenerationRequest.builder("burst-" + i).image(variant(small, i)).maxTiles(1)
                    .task(Task.CAPTION).maxNewTokens(3).build());
        }
        List<GenerationResult> expected = requests.stream().map(serial::generateNow).toList();
        try (Engine engine = Engine.open(options().maxBatch(1).maxPrefillTokens(256).build())) {
            int[] mostWaiting = {0};
            Thread watcher = Thread.ofPlatform().daemon().start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    mostWaiting[0] = Math.max(mostWaiting[0], engine.stats().waiting());
                    Thread.onSpinWait();
                }
            });
            List<CompletableFuture<GenerationResult>> futures = engine.submitAll(requests);
            for (int i = 0; i < futures.size(); i++) {
                assertArrayEquals(expected.get(i).generatedIds(), join(futures.get(i)).generatedIds(), "request " + i);
            }
            watcher.interrupt();
            watcher.join();
            assertTrue(mostWaiting[0] <= ContinuousBatchScheduler.WAITING_IMAGE_PASSES + 1,
                    mostWaiting[0] + " preprocessed images waited at once");
            assertTrue(mostWaiting[0] >= 1, "the watcher never saw a waiting request");
        }
    }

    /** {@code png} with its top-left pixel set from {@code seed}: other bytes, so no shared preprocessing. */
    private static byte[] variant(byte[] png, int seed) throws java.io.IOException {
        java.awt.image.BufferedImage image = javax.imageio.ImageIO.read(new java.io.ByteArrayInputStream(png));
        image.setRGB(0, 0, 0x10101 * (seed * 19 % 256));
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        javax.imageio.ImageIO.write(image, "png", out);
        return out.toByteArray();
    }

    @Test
    void seededSamplingIsRepeatableAndTopKOneIsGreedy() {
        GenerationRequest.Builder base = GenerationRequest.builder("s").image(square).question("Describe.").maxNewTokens(12);
        GenerationResult a = serial.generateNow(base.sampling(new SamplingParams(1.5, 0.95, 0, 42)).build());
        GenerationResult b = serial.generateNow(base.sampling(new SamplingParams(1.5, 0.95, 0, 42)).build());
        GenerationResult c = serial.generateNow(base.sampling(new SamplingParams(1.5, 0.95, 0, 43)).build());
        GenerationResult greedy = serial.generateNow(base.sampling(SamplingParams.greedy()).build());
        GenerationResult topOne = serial.generateNow(base.sampling(new SamplingParams(1.0, 1.0, 1, 5)).build());
        assertArrayEquals(a.generatedIds(), b.generatedIds());
        assertNotEquals(java.util.Arrays.toString(a.generatedIds()), java.util.Arrays.toString(c.generatedIds()));
        assertArrayEquals(greedy.generatedIds(), topOne.generatedIds());
    }

    private static void waitFor(java.util.function.BooleanSupplier condition) throws InterruptedException {
        waitFor(condition, 20);
    }

    private static void waitFor(java.util.function.BooleanSupplier condition, long pollMillis) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("condition not reached in 60 s");
            }
            Thread.sleep(pollMillis);
        }
    }

    /**
     * Free C heap goes back to the OS once the engine has been idle after an image prefill, not
     * after each prefill (the next one would fault it all in again), and only once per idle spell.
     */
    @Test
    void theHeapIsTrimmedOnceTheEngineIsIdleAfterAnImagePrefill() throws Exception {
        try (Engine engine = Engine.open(options().build())) {
            GenerationRequest r = GenerationRequest.builder("trim").image(square).task(Task.CAPTION).maxNewTokens(2).build();
            engine.generateNow(r);
            engine.generateNow(r);
            assertEquals(0, engine.heapTrims(), "no trim while requests keep coming");
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (engine.heapTrims() == 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(1, engine.heapTrims(), "one trim once the engine is idle");
            Thread.sleep(3 * ContinuousBatchScheduler.IDLE_BEFORE_TRIM_MILLIS);
            assertEquals(1, engine.heapTrims(), "no second trim without another image prefill");
        }
    }
}

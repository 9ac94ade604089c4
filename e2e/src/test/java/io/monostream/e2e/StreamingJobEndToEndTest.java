package io.monostream.e2e;

import io.monostream.job.MonostreamOptions;
import io.monostream.job.MonostreamPipeline;
import io.monostream.job.Outcome;
import io.monostream.job.TaskRequestCall;
import io.monostream.local.EmbeddedKafka;
import io.monostream.runtime.Engine;
import io.monostream.runtime.EngineOptions;
import io.monostream.schema.CaptionResult;
import io.monostream.schema.DeadLetter;
import io.monostream.schema.ImageEvent;
import io.monostream.schema.ImageReference;
import io.monostream.schema.InlineImage;
import io.monostream.schema.OcrResult;
import io.monostream.schema.ReasonCode;
import io.monostream.schema.Task;
import io.monostream.schema.Timings;
import io.monostream.schema.WireFormat;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.CheckpointListener;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The job end to end on a real KRaft broker, a Flink MiniCluster and the real engine on the tiny
 * random-weight checkpoint {@code tiny-v2} (f32, cpu): results equal the engine's direct output,
 * the bad-input matrix, exactly-once after an injected failure, and inputs = results + dead letters.
 * Kept fast: one tile per image (256 image tokens) and 8 new tokens.
 */
class StreamingJobEndToEndTest {
    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(2).build());

    static final Path MODEL = Path.of("../model-operator/src/test/resources/models/tiny-v2").toAbsolutePath().normalize();
    static final int MAX_NEW_TOKENS = 8;
    static final int MAX_TILES = 1;

    private static EmbeddedKafka kafka;
    /** The same checkpoint opened in the test itself, to compute what the job must have written. */
    private static Engine direct;
    private static final AtomicInteger RUN = new AtomicInteger();

    @TempDir
    Path dir;

    @BeforeAll
    static void startKafka() throws Exception {
        assertTrue(Files.isDirectory(MODEL), "test checkpoint at " + MODEL);
        kafka = EmbeddedKafka.start();
        direct = Engine.open(EngineOptions.builder(MODEL).build());
    }

    /** Greedy decoding is deterministic: the engine's own answer for the same image, task and limits. */
    static String directText(byte[] image, Task task) {
        return direct.generateNow(TaskRequestCall.requestFor("direct", image, task.name(), null,
                MAX_NEW_TOKENS, MAX_TILES).build()).text();
    }

    @AfterAll
    static void stopKafka() throws Exception {
        if (direct != null) {
            direct.close();
        }
        kafka.close();
    }

    /** One isolated run: its own topics, group and transactional ids. */
    private final class Run {
        final String suffix = "-" + RUN.incrementAndGet();
        final String images = "images" + suffix, captions = "captions" + suffix, ocr = "ocr" + suffix, dead = "dead" + suffix;
        final List<byte[]> inputs = new ArrayList<>();

        Configuration conf() {
            Map<String, String> m = new HashMap<>();
            m.put(MonostreamOptions.BOOTSTRAP_SERVERS.key(), kafka.bootstrapServers());
            m.put(MonostreamOptions.TOPIC_IMAGES.key(), images);
            m.put(MonostreamOptions.TOPIC_CAPTIONS.key(), captions);
            m.put(MonostreamOptions.TOPIC_OCR.key(), ocr);
            m.put(MonostreamOptions.TOPIC_DEAD_LETTERS.key(), dead);
            m.put(MonostreamOptions.GROUP_ID.key(), "g" + suffix);
            m.put(MonostreamOptions.TRANSACTIONAL_ID_PREFIX.key(), "tx" + suffix);
            m.put(MonostreamOptions.SOURCE_BOUNDED.key(), "true");
            m.put(MonostreamOptions.CHECKPOINT_INTERVAL.key(), "300 ms");
            m.put(MonostreamOptions.PARALLELISM.key(), "2");
            m.put(MonostreamOptions.FETCH_ALLOWED_ROOTS.key(), dir.resolve("root").toString());
            m.put(MonostreamOptions.ASYNC_TIMEOUT.key(), "60 s");
            m.put(MonostreamOptions.MODEL_PATH.key(), MODEL.toString());
            m.put(MonostreamOptions.MAX_TILES.key(), String.valueOf(MAX_TILES));
            m.put(MonostreamOptions.MAX_NEW_TOKENS_DEFAULT.key(), String.valueOf(MAX_NEW_TOKENS));
            return Configuration.fromMap(m);
        }

        void produce(byte[] value) {
            inputs.add(value);
        }

        void produce(ImageEvent e) {
            produce(WireFormat.of(ImageEvent.class).encode(e));
        }

        void execute(RichMapFunction<Outcome, Outcome> beforeSinks) throws Exception {
            kafka.createTopics(2, images, captions, ocr, dead);
            Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                    ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class,
                    ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                for (byte[] v : inputs) {
                    producer.send(new ProducerRecord<>(images, v)).get();
                }
            }
            Configuration conf = conf();
            StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
            MonostreamPipeline.configure(env, conf);
            DataStream<Outcome> outcomes = MonostreamPipeline.outcomes(env, conf, MonostreamPipeline.modelFunction(conf));
            if (beforeSinks != null) {
                outcomes = outcomes.map(beforeSinks).uid("injected");
            }
            MonostreamPipeline.sinks(outcomes, conf);
            env.execute("e2e" + suffix);
        }

        List<byte[]> readCommitted(String topic) {
            Map<String, Object> c = Map.of(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                    ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                    ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class,
                    ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
            List<byte[]> out = new ArrayList<>();
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c)) {
                List<TopicPartition> parts = consumer.partitionsFor(topic).stream()
                        .map(pi -> new TopicPartition(topic, pi.partition())).toList();
                consumer.assign(parts);
                consumer.seekToBeginning(parts);
                Map<TopicPartition, Long> end = consumer.endOffsets(parts);
                long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
                while (parts.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
                    assertTrue(System.nanoTime() < deadline, "timed out reading " + topic);
                    for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                        out.add(r.value());
                    }
                }
            }
            return out;
        }

        Outputs outputs() {
            Outputs o = new Outputs();
            readCommitted(captions).forEach(b -> o.captions.add(WireFormat.of(CaptionResult.class).decode(b)));
            readCommitted(ocr).forEach(b -> o.ocr.add(WireFormat.of(OcrResult.class).decode(b)));
            readCommitted(dead).forEach(b -> o.dead.add(WireFormat.of(DeadLetter.class).decode(b)));
            return o;
        }
    }

    static final class Outputs {
        final List<CaptionResult> captions = new ArrayList<>();
        final List<OcrResult> ocr = new ArrayList<>();
        final List<DeadLetter> dead = new ArrayList<>();

        /** (id, task) → how many results; a duplicate shows as 2. */
        Map<String, Integer> resultCounts() {
            Map<String, Integer> m = new LinkedHashMap<>();
            captions.forEach(r -> m.merge(r.getId() + "/" + r.getTask(), 1, Integer::sum));
            ocr.forEach(r -> m.merge(r.getId() + "/" + r.getTask(), 1, Integer::sum));
            return m;
        }

        int total() {
            return captions.size() + ocr.size() + dead.size();
        }
    }

    static ImageEvent.Builder event(String id, byte[] image, Task... tasks) {
        return ImageEvent.newBuilder().setId(id)
                .setImage(InlineImage.newBuilder().setData(ByteBuffer.wrap(image)).build())
                .setContentType(null).setTasks(List.of(tasks)).setPrompt(null).setMaxNewTokens(null)
                .setAttributes(Map.of("tenant", "t-" + id, "page", "1")).setEventTime(Instant.ofEpochMilli(1_700_000_000_000L));
    }

    static ImageEvent.Builder byReference(String id, String uri, Task... tasks) {
        return event(id, new byte[0], tasks).setImage(ImageReference.newBuilder().setUri(uri).build());
    }

    @Test
    void mixedTasksGiveExactlyOneResultPerIdAndTaskWithAttributesCarried() throws Exception {
        Run run = new Run();
        Map<String, byte[]> images = new HashMap<>();
        Task[][] sets = {{Task.CAPTION}, {Task.OCR}, {Task.CAPTION, Task.OCR}, {Task.DETAILED_CAPTION, Task.OCR, Task.CAPTION}};
        int expected = 0;
        for (int i = 0; i < 12; i++) {
            byte[] img = i % 2 == 0 ? TestImages.png("Text " + i, 64 + i, 48, i) : TestImages.jpeg("Jpeg " + i, 80, 40 + i, i);
            images.put("e" + i, img);
            Task[] tasks = sets[i % sets.length];
            expected += tasks.length;
            run.produce(event("e" + i, img, tasks).build());
        }
        run.execute(null);
        Outputs out = run.outputs();
        assertEquals(List.of(), out.dead.stream().map(d -> d.getId() + " " + d.getReason() + " " + d.getMessage()).toList());
        assertEquals(expected, out.total(), "inputs' tasks = results + dead letters");
        out.resultCounts().forEach((k, n) -> assertEquals(1, n, "results for " + k));
        assertEquals(expected, out.resultCounts().size());
        for (CaptionResult r : out.captions) {
            assertNotEquals(Task.OCR, r.getTask());
            assertEquals("t-" + r.getId(), r.getAttributes().get("tenant"));
            assertEquals(direct.modelName(), r.getModel());
            assertEquals(io.monostream.prompt.Task.valueOf(r.getTask().name()).defaultQuestion(), r.getPrompt());
            assertEquals(1, r.getImageTiles());
            assertEquals(directText(images.get(r.getId()), r.getTask()), r.getText(), "text of " + r.getId() + "/" + r.getTask());
            assertTrue(r.getGeneratedTokens() >= 1 && r.getGeneratedTokens() <= MAX_NEW_TOKENS);
            assertTrue(r.getPromptTokens() > 256, "256 image tokens + the question");
            assertTrue(r.getTimings().getPrefillMs() > 0);
        }
        for (OcrResult r : out.ocr) {
            assertEquals(Task.OCR, r.getTask());
            assertEquals("t-" + r.getId(), r.getAttributes().get("tenant"));
            assertEquals(directText(images.get(r.getId()), Task.OCR), r.getText(), "text of " + r.getId() + "/OCR");
            assertEquals(direct.modelName(), r.getModel());
        }
        assertTrue(out.captions.stream().map(CaptionResult::getText).distinct().count() > 1,
                "different images give different text (the comparison is not vacuous)");
    }

    @Test
    void badInputsBecomeDeadLettersWithTheRightReasonWhileGoodOnesSucceed() throws Exception {
        Run run = new Run();
        Path root = Files.createDirectories(dir.resolve("root"));
        Path outside = Files.createDirectories(dir.resolve("outside"));
        Files.write(root.resolve("good.png"), TestImages.png("file", 50, 30, 1));
        Files.write(outside.resolve("secret.png"), TestImages.png("secret", 50, 30, 2));
        byte[] png = TestImages.png("good", 60, 40, 3);
        byte[] jpeg = TestImages.jpeg("good", 120, 90, 4);

        Map<String, ReasonCode> expectDead = new LinkedHashMap<>();
        run.produce(event("good-0", png, Task.CAPTION).build());
        run.produce("garbage bytes, not avro at all".getBytes());
        expectDead.put(null + "#garbage", ReasonCode.UNDECODABLE_EVENT);
        run.produce(WireFormat.of(Timings.class).encode(new Timings(1.0, 2.0, 3.0, 4.0)));
        expectDead.put(null + "#unknown-schema", ReasonCode.UNDECODABLE_EVENT);
        run.produce(event("empty", new byte[0], Task.CAPTION).build());
        expectDead.put("empty", ReasonCode.EMPTY_IMAGE);
        run.produce(event("not-image", "just some text, not an image".getBytes(), Task.OCR).build());
        expectDead.put("not-image", ReasonCode.UNSUPPORTED_FORMAT);
        run.produce(event("truncated-png", TestImages.truncated(png, 0.5), Task.CAPTION).build());
        expectDead.put("truncated-png", ReasonCode.CORRUPT_IMAGE);
        run.produce(event("truncated-jpeg", TestImages.truncated(jpeg, 0.6), Task.CAPTION).build());
        expectDead.put("truncated-jpeg", ReasonCode.CORRUPT_IMAGE);
        run.produce(event("good-1", jpeg, Task.OCR).build());
        run.produce(event("header-bomb", TestImages.pngHeaderClaiming(100_000, 100_000), Task.CAPTION).build());
        expectDead.put("header-bomb", ReasonCode.IMAGE_TOO_LARGE);
        run.produce(event("wbmp", TestImages.wbmp(40, 30), Task.CAPTION).build());
        expectDead.put("wbmp", ReasonCode.UNSUPPORTED_FORMAT);
        run.produce(event("good-gif", TestImages.encode(TestImages.render("gif", 40, 30, 5), "gif"), Task.OCR).build());
        run.produce(byReference("file-outside", outside.resolve("secret.png").toUri().toString(), Task.CAPTION).build());
        expectDead.put("file-outside", ReasonCode.FETCH_DENIED);
        run.produce(byReference("file-dotdot", "file://" + root + "/../outside/secret.png", Task.CAPTION).build());
        expectDead.put("file-dotdot", ReasonCode.FETCH_DENIED);
        run.produce(byReference("file-missing", root.resolve("missing.png").toUri().toString(), Task.CAPTION).build());
        expectDead.put("file-missing", ReasonCode.FETCH_FAILED);
        run.produce(byReference("http-denied", "http://example.invalid/a.png", Task.CAPTION).build());
        expectDead.put("http-denied", ReasonCode.FETCH_DENIED);
        run.produce(byReference("ftp", "ftp://host/a.png", Task.CAPTION).build());
        expectDead.put("ftp", ReasonCode.FETCH_DENIED);
        run.produce(event("unknown-task", png, Task.CAPTION, Task.UNKNOWN).build()); // caption succeeds, UNKNOWN fails
        expectDead.put("unknown-task", ReasonCode.INVALID_REQUEST);
        run.produce(event("absurd-tokens", png, Task.CAPTION).setMaxNewTokens(1_000_000).build());
        expectDead.put("absurd-tokens", ReasonCode.INVALID_REQUEST);
        run.produce(byReference("good-file", root.resolve("good.png").toUri().toString(), Task.CAPTION, Task.OCR).build());
        run.execute(null);

        Outputs out = run.outputs();
        Map<String, ReasonCode> gotDead = new LinkedHashMap<>();
        int undecodable = 0;
        for (DeadLetter d : out.dead) {
            if (d.getId() == null) {
                gotDead.put(null + "#" + (undecodable++ == 0 ? "garbage" : "unknown-schema"), d.getReason());
                assertTrue(d.getOriginal().remaining() > 0, "original bytes kept");
                assertEquals(run.images, d.getSourceTopic());
            } else {
                assertNull(gotDead.put(d.getId(), d.getReason()), "one dead letter for " + d.getId());
            }
        }
        assertEquals(sorted(expectDead), sorted(gotDead),
                () -> "dead letters: " + out.dead.stream().map(d -> d.getId() + "=" + d.getReason() + " (" + d.getMessage() + ")").toList());
        assertEquals(Map.of("good-0/CAPTION", 1, "good-1/OCR", 1, "good-gif/OCR", 1, "unknown-task/CAPTION", 1,
                "good-file/CAPTION", 1, "good-file/OCR", 1), out.resultCounts());
        // 19 inputs: 4 good (5 results), 14 wholly dead, 1 half dead (1 result + 1 dead letter)
        assertEquals(19, run.inputs.size());
        assertEquals(6 + expectDead.size(), out.total(), "every input ends as its results or dead letters");
        for (OcrResult r : out.ocr) {
            byte[] image = r.getId().equals("good-1") ? jpeg : r.getId().equals("good-gif")
                    ? TestImages.encode(TestImages.render("gif", 40, 30, 5), "gif") : Files.readAllBytes(root.resolve("good.png"));
            assertEquals(directText(image, Task.OCR), r.getText(), "text of " + r.getId());
        }
    }

    private static Map<String, ReasonCode> sorted(Map<String, ReasonCode> m) {
        return new java.util.TreeMap<>(m);
    }

    /** Throws once, after {@code afterRecords} records and at least one completed checkpoint. */
    static final class FailOnce extends RichMapFunction<Outcome, Outcome> implements CheckpointListener {
        static final AtomicBoolean FAILED = new AtomicBoolean();
        private final int afterRecords;
        private transient int seen;
        private transient boolean checkpointed;

        FailOnce(int afterRecords) {
            this.afterRecords = afterRecords;
        }

        @Override
        public void open(OpenContext ctx) {
            seen = 0;
        }

        @Override
        public Outcome map(Outcome o) throws Exception {
            if (++seen >= afterRecords && checkpointed && FAILED.compareAndSet(false, true)) {
                throw new IllegalStateException("injected failure after " + seen + " records");
            }
            if (!checkpointed) {
                Thread.sleep(50); // let a checkpoint complete mid-stream
            }
            return o;
        }

        @Override
        public void notifyCheckpointComplete(long checkpointId) {
            checkpointed = true;
        }
    }

    @Test
    void anInjectedFailureMidStreamLosesAndDuplicatesNothing() throws Exception {
        Run run = new Run();
        int n = 40;
        Map<String, byte[]> images = new HashMap<>();
        for (int i = 0; i < n; i++) {
            images.put("r" + i, TestImages.png("R" + i, 40 + i, 30, i));
            run.produce(event("r" + i, images.get("r" + i), i % 3 == 0 ? new Task[] {Task.CAPTION, Task.OCR} : new Task[] {Task.OCR}).build());
        }
        run.produce("garbage".getBytes());
        FailOnce.FAILED.set(false);
        run.execute(new FailOnce(15));
        assertTrue(FailOnce.FAILED.get(), "the failure was injected");
        Outputs out = run.outputs();
        int expectedResults = 0;
        for (int i = 0; i < n; i++) {
            expectedResults += i % 3 == 0 ? 2 : 1;
        }
        assertEquals(expectedResults, out.resultCounts().size(), "no result lost");
        out.resultCounts().forEach((k, c) -> assertEquals(1, c, "no duplicate of " + k));
        assertEquals(1, out.dead.size());
        assertEquals(expectedResults + 1, out.total());
        // replayed requests (restored from the checkpoint) write the same text as a direct run
        for (CaptionResult r : out.captions) {
            assertEquals(directText(images.get(r.getId()), r.getTask()), r.getText(), "text of " + r.getId());
        }
        for (OcrResult r : out.ocr) {
            assertEquals(directText(images.get(r.getId()), Task.OCR), r.getText(), "text of " + r.getId());
        }
    }
}

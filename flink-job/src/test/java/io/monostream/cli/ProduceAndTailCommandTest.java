package io.monostream.cli;

import io.monostream.local.EmbeddedKafka;
import io.monostream.local.SampleImages;
import io.monostream.schema.CaptionResult;
import io.monostream.schema.DeadLetter;
import io.monostream.schema.ImageEvent;
import io.monostream.schema.ImageReference;
import io.monostream.schema.InlineImage;
import io.monostream.schema.ReasonCode;
import io.monostream.schema.Task;
import io.monostream.schema.Timings;
import io.monostream.schema.WireFormat;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.*;

/** {@code produce} writes decodable ImageEvents; {@code tail} prints only committed records, readably. */
class ProduceAndTailCommandTest {
    private static EmbeddedKafka kafka;

    @TempDir
    Path dir;

    @BeforeAll
    static void start() throws Exception {
        kafka = EmbeddedKafka.start();
    }

    @AfterAll
    static void stop() throws Exception {
        kafka.close();
    }

    private static String stdout(Supplier<Integer> command, int expectedExit) {
        PrintStream old = System.out;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setOut(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            assertEquals(expectedExit, command.get());
        } finally {
            System.setOut(old);
        }
        return buf.toString(StandardCharsets.UTF_8);
    }

    private static List<ImageEvent> readAll(String topic, int n) {
        List<ImageEvent> out = new ArrayList<>();
        try (TopicReader r = new TopicReader(kafka.bootstrapServers(), new Properties(), List.of(topic), true)) {
            long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            while (out.size() < n && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> rec : r.poll(Duration.ofMillis(200))) {
                    out.add(WireFormat.of(ImageEvent.class).decode(rec.value()));
                }
            }
        }
        return out;
    }

    @Test
    void produceSendsEachImageFileOfADirectoryInlineWithTheTasks() throws Exception {
        kafka.createTopics(1, "produce-inline");
        Path images = Files.createDirectories(dir.resolve("images"));
        byte[] a = SampleImages.png(SampleImages.shapes());
        byte[] b = SampleImages.jpeg(SampleImages.sign());
        Files.write(images.resolve("a.png"), a);
        Files.write(images.resolve("b.jpg"), b);
        Files.writeString(images.resolve("notes.txt"), "not an image: skipped when a directory is expanded");
        String out = stdout(() -> run("produce", "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "produce-inline",
                "--tasks", "caption,OCR", images.toString()), 0);
        assertTrue(out.contains("sent a.png") && out.contains("sent b.jpg"), out);
        List<ImageEvent> events = readAll("produce-inline", 2);
        assertEquals(List.of("a.png", "b.jpg"), events.stream().map(e -> e.getId().toString()).toList());
        for (ImageEvent e : events) {
            assertEquals(List.of(Task.CAPTION, Task.OCR), e.getTasks());
            assertEquals(images.resolve(e.getId().toString()).toAbsolutePath().toString(), e.getAttributes().get("file"));
        }
        assertArrayEquals(a, bytes(((InlineImage) events.get(0).getImage()).getData()));
        assertArrayEquals(b, bytes(((InlineImage) events.get(1).getImage()).getData()));
    }

    @Test
    void produceByReferenceSendsFileUris() throws Exception {
        kafka.createTopics(1, "produce-ref");
        Path f = dir.resolve("page 1.png");
        Files.write(f, SampleImages.png(SampleImages.receipt()));
        stdout(() -> run("produce", "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "produce-ref",
                "--by-reference", f.toString()), 0);
        ImageEvent e = readAll("produce-ref", 1).getFirst();
        assertEquals(List.of(Task.CAPTION), e.getTasks());
        assertEquals(f.toAbsolutePath().toUri().toString(), ((ImageReference) e.getImage()).getUri().toString());
    }

    @Test
    void produceRefusesUnknownTasksAndMissingFiles() {
        assertEquals(2, Main.run(new String[] {"produce", "--bootstrap-servers", "x:1", "--topic", "t", "--tasks", "DRAW", "a.png"}));
        assertEquals(2, Main.run(new String[] {"produce", "--bootstrap-servers", "x:1", "--topic", "t", dir.resolve("missing.png").toString()}));
    }

    @Test
    void tailPrintsCommittedResultsAndDeadLettersButNotAbortedOnes() throws Exception {
        kafka.createTopics(1, "tail-out");
        CaptionResult caption = CaptionResult.newBuilder().setId("img-1").setTask(Task.CAPTION).setText("a red circle")
                .setModel("m").setPrompt("Describe").setPromptTokens(300).setGeneratedTokens(4).setImageTiles(1)
                .setTimings(new Timings(1.0, 2.0, 30.0, 12.0)).setAttributes(Map.of()).setEventTime(Instant.EPOCH).build();
        DeadLetter dead = DeadLetter.newBuilder().setReason(ReasonCode.CORRUPT_IMAGE).setMessage("truncated").setStage("model")
                .setId("img-2").setTask(Task.OCR).setOriginal(ByteBuffer.wrap(new byte[] {1, 2, 3})).setSourceTopic("images")
                .setSourcePartition(0).setSourceOffset(7).setAttributes(Map.of()).setTime(Instant.EPOCH).build();
        CaptionResult aborted = CaptionResult.newBuilder(caption).setId("aborted").build();
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                ProducerConfig.TRANSACTIONAL_ID_CONFIG, "tail-test",
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class,
                ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("tail-out", WireFormat.of(CaptionResult.class).encode(aborted)));
            producer.abortTransaction();
            producer.beginTransaction();
            producer.send(new ProducerRecord<>("tail-out", WireFormat.of(CaptionResult.class).encode(caption)));
            producer.send(new ProducerRecord<>("tail-out", WireFormat.of(DeadLetter.class).encode(dead)));
            producer.send(new ProducerRecord<>("tail-out", "garbage".getBytes(StandardCharsets.UTF_8)));
            producer.commitTransaction();
        }
        String out = stdout(() -> run("tail", "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "tail-out",
                "--from-beginning", "--timeout", "3"), 0);
        List<String> lines = out.lines().toList();
        assertEquals(3, lines.size(), out);
        assertTrue(lines.get(0).contains("img-1") && lines.get(0).contains("\"a red circle\"") && lines.get(0).contains("prefill 30.0 ms"), out);
        assertTrue(lines.get(1).contains("img-2") && lines.get(1).contains("CORRUPT_IMAGE") && lines.get(1).contains("truncated"), out);
        assertTrue(lines.get(2).contains("undecodable (7 bytes)"), out);
        assertFalse(out.contains("aborted"), "an aborted transaction is invisible to read_committed");

        String first = stdout(() -> run("tail", "--bootstrap-servers", kafka.bootstrapServers(), "--topic", "tail-out",
                "--from-beginning", "--max", "1"), 0);
        assertEquals(1, first.lines().count(), first);
    }

    private static int run(String... args) {
        return Main.run(args);
    }

    private static byte[] bytes(ByteBuffer b) {
        byte[] out = new byte[b.remaining()];
        b.duplicate().get(out);
        return out;
    }
}

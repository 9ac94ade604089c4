package io.monostream.cli;

import io.monostream.job.MonostreamOptions;
import io.monostream.job.MonostreamPipeline;
import io.monostream.local.DemoModel;
import io.monostream.local.EmbeddedKafka;
import io.monostream.local.OutputRecord;
import io.monostream.local.SampleImages;
import io.monostream.schema.ImageEvent;
import io.monostream.schema.Task;
import io.monostream.schema.WireFormat;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.RestOptions;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * {@code demo}: the whole system on one machine. An in-process KRaft broker, the job in a local
 * Flink MiniCluster (web UI on localhost), the bundled random-weight model unless {@code --model},
 * sample images drawn here (plus one broken one, to show a dead letter); prints every result as
 * it is committed and exits 0 once each input has its outcomes.
 */
public final class DemoCommand {
    private static final String USAGE = """
            usage: monostream demo [--model DIR] [--timeout SECONDS] [--max-new-tokens N] [--max-tiles N] [--web-ui-port P] [--dtype f32|bf16] [--device cpu|cuda[:N]] [--threads N]

            Starts a Kafka broker and a Flink MiniCluster in this process, runs the job, sends sample
            images (drawn by the demo itself) and one broken image, prints each result and dead letter as
            it is committed, and exits once every input has its outcome.

              --model DIR          a Mono-InternVL checkpoint [the small random-weight model in the jar]
              --timeout SECONDS    give up after this long [120]
              --max-new-tokens N   tokens per answer [24]
              --max-tiles N        448x448 tiles per image (256 image tokens each) [2]
              --web-ui-port P      port of the Flink web UI [a free port]
              --dtype f32|bf16     compute dtype [f32]
              --device cpu|cuda[:N] device [cpu]
              --threads N          intra-op threads [libtorch's]
            """;

    private DemoCommand() {}

    public static int run(String[] args) throws IOException {
        Flags flags = Flags.parse("demo", args, Set.of("model", "timeout", "max-new-tokens", "max-tiles", "web-ui-port", "dtype", "device", "threads"),
                Set.of("help"));
        if (flags.has("help")) {
            System.out.print(USAGE);
            return 0;
        }
        if (!flags.positional().isEmpty()) {
            throw new UsageException("demo: unexpected arguments " + flags.positional());
        }
        Duration timeout = Duration.ofSeconds(flags.getInt("timeout", 120));
        int maxNewTokens = flags.getInt("max-new-tokens", 24);
        int maxTiles = flags.getInt("max-tiles", 2);
        int port = flags.getInt("web-ui-port", 0);
        Path work = Files.createTempDirectory("monostream-demo");
        try {
            Path model;
            if (flags.has("model")) {
                model = flags.existingPath("model").toAbsolutePath();
                say("model: " + model);
            } else {
                model = DemoModel.extractTo(work);
                say("model: the demo checkpoint bundled in the jar (random weights, a few MB).");
                say("       Its weights are random, so it writes MEANINGLESS text: the demo shows the pipeline,");
                say("       not the model. Pass --model DIR with a real Mono-InternVL checkpoint for real captions.");
            }
            return runDemo(model, flags, timeout, maxNewTokens, maxTiles, port == 0 ? freePort() : port);
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            System.err.println("demo: failed: " + e);
            return 1;
        } finally {
            deleteTree(work);
        }
    }

    private static int runDemo(Path model, Flags flags, Duration timeout, int maxNewTokens, int maxTiles, int port) throws Exception {
        try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
            say("kafka: in-process KRaft broker at " + kafka.bootstrapServers());
            String images = MonostreamOptions.TOPIC_IMAGES.defaultValue();
            List<String> outputs = List.of(MonostreamOptions.TOPIC_CAPTIONS.defaultValue(),
                    MonostreamOptions.TOPIC_OCR.defaultValue(), MonostreamOptions.TOPIC_DEAD_LETTERS.defaultValue());
            kafka.createTopics(1, images);
            kafka.createTopics(1, outputs.toArray(String[]::new));

            Configuration conf = new Configuration();
            conf.setString(MonostreamOptions.BOOTSTRAP_SERVERS.key(), kafka.bootstrapServers());
            conf.setString(MonostreamOptions.MODEL_PATH.key(), model.toString());
            EngineChoice.apply(flags, conf);
            conf.setString(MonostreamOptions.CHECKPOINT_INTERVAL.key(), "1 s");
            conf.setString(MonostreamOptions.MAX_TILES.key(), String.valueOf(maxTiles));
            conf.setString(MonostreamOptions.MAX_NEW_TOKENS_DEFAULT.key(), String.valueOf(maxNewTokens));
            conf.setString(MonostreamOptions.GROUP_ID.key(), "monostream-demo");
            conf.setString(MonostreamOptions.TRANSACTIONAL_ID_PREFIX.key(), "monostream-demo");
            Configuration flink = new Configuration();
            flink.set(RestOptions.PORT, port);
            StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironmentWithWebUI(flink);
            MonostreamPipeline.build(env, conf);
            JobClient job = env.executeAsync("monostream demo");
            say("flink: job " + job.getJobID() + " running in a local MiniCluster; web UI at http://localhost:" + port);

            int expected = produce(kafka.bootstrapServers(), images);
            int seen = 0;
            try (TopicReader reader = new TopicReader(kafka.bootstrapServers(), new Properties(), outputs, true)) {
                long deadline = System.nanoTime() + timeout.toNanos();
                while (seen < expected && System.nanoTime() < deadline) {
                    if (job.getJobStatus().get().isGloballyTerminalState()) {
                        say("the job stopped: " + job.getJobStatus().get());
                        break;
                    }
                    for (ConsumerRecord<byte[], byte[]> r : reader.poll(Duration.ofMillis(200))) {
                        seen++;
                        System.out.printf("%6.1f s  %-12s %s%n", (System.nanoTime() - STARTED) / 1e9, r.topic(),
                                OutputRecord.format(OutputRecord.decode(r.value())));
                    }
                }
            } finally {
                job.cancel().get(30, TimeUnit.SECONDS);
            }
            if (seen < expected) {
                say("only " + seen + " of " + expected + " outcomes arrived within " + timeout.toSeconds() + " s");
                return 1;
            }
            say("done: " + seen + " outcomes, as expected (one per task of each good image, one dead letter)");
            return 0;
        }
    }

    /** The sample images with mixed tasks, and one truncated PNG; returns the outcomes to expect. */
    private static int produce(String bootstrapServers, String topic) throws Exception {
        Map<String, byte[]> samples = SampleImages.all();
        Map<String, List<Task>> tasks = Map.of("receipt", List.of(Task.OCR, Task.CAPTION), "invoice", List.of(Task.OCR),
                "sign", List.of(Task.CAPTION, Task.DETAILED_CAPTION), "shapes", List.of(Task.CAPTION));
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrapServers,
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class,
                ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
        int expected = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (Map.Entry<String, byte[]> s : samples.entrySet()) {
                List<Task> t = tasks.get(s.getKey());
                send(producer, topic, s.getKey(), wire.encode(ImageEvents.inline(s.getKey(), s.getValue(), t, Map.of("source", "demo"))));
                say("sent: " + s.getKey() + " (" + s.getValue().length + " bytes) for " + t);
                expected += t.size();
            }
            byte[] png = samples.get("shapes");
            byte[] broken = Arrays.copyOf(png, png.length / 2);
            send(producer, topic, "broken", wire.encode(ImageEvents.inline("broken", broken, List.of(Task.CAPTION), Map.of("source", "demo"))));
            say("sent: broken (the first half of a PNG) for [CAPTION]: expect a CORRUPT_IMAGE dead letter");
            expected += 1;
            producer.flush();
        }
        return expected;
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, String topic, String id, byte[] value) throws Exception {
        producer.send(new ProducerRecord<>(topic, id.getBytes(StandardCharsets.UTF_8), value)).get();
    }

    private static final long STARTED = System.nanoTime();

    private static void say(String line) {
        System.out.printf("%6.1f s  demo: %s%n", (System.nanoTime() - STARTED) / 1e9, line);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static void deleteTree(Path dir) {
        try (Stream<Path> files = Files.walk(dir)) {
            files.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // a temp directory; the OS cleans it eventually
        }
    }
}

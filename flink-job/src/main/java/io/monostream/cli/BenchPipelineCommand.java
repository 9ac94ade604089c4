package io.monostream.cli;

import io.monostream.job.IdentityModelStage;
import io.monostream.job.MonostreamOptions;
import io.monostream.job.MonostreamPipeline;
import io.monostream.job.Outcome;
import io.monostream.job.TaskRequest;
import io.monostream.job.TaskRequestCall;
import io.monostream.local.DemoModel;
import io.monostream.local.EmbeddedKafka;
import io.monostream.local.SampleImages;
import io.monostream.runtime.Engine;
import io.monostream.runtime.GenerationResult;
import io.monostream.schema.ImageEvent;
import io.monostream.schema.Task;
import io.monostream.schema.WireFormat;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.execution.JobClient;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.async.AsyncFunction;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * {@code bench-pipeline}: events/s of the whole pipeline (produce → results committed, read with
 * {@code read_committed}) against the bare engine on the same images and prompts, with the same
 * number of requests in flight; and the pipeline's own ceiling with the model stage replaced by
 * {@link IdentityModelStage}. Everything runs in this process (embedded Kafka, local MiniCluster).
 */
final class BenchPipelineCommand {
    static final String USAGE = """
            usage: monostream bench-pipeline [--model DIR] [--events N] [--tasks CAPTION,OCR] [--max-new-tokens N]
                                             [--max-tiles N] [--capacity N] [--identity-events N]
                                             [--dtype f32|bf16] [--device cpu|cuda[:N]] [--threads N]

              --model DIR          checkpoint [the demo model in the jar]
              --events N           distinct images per engine run [200]
              --tasks T,T          tasks per image [CAPTION]
              --max-new-tokens N   [16]
              --max-tiles N        [1]
              --capacity N         requests in flight: the async capacity, and the bare engine's concurrency [16]
              --identity-events N  events for the identity-model ceiling [3000]
              --dtype f32|bf16     compute dtype [f32]
              --device cpu|cuda[:N] device [cpu]
              --threads N          intra-op threads [libtorch's]
            """;
    private static final int WARMUP = 4;

    private BenchPipelineCommand() {}

    /** One measured run. */
    record Figure(String what, int events, int results, double seconds) {
        double eventsPerSecond() {
            return events / seconds;
        }
    }

    static int run(String[] args) throws IOException {
        Flags flags = Flags.parse("bench-pipeline", args, Set.of("model", "events", "tasks", "max-new-tokens",
                "max-tiles", "capacity", "identity-events", "dtype", "device", "threads"), Set.of("help"));
        if (flags.has("help")) {
            System.out.print(USAGE);
            return 0;
        }
        int events = flags.getInt("events", 200);
        List<Task> tasks = ImageEvents.parseTasks(flags.get("tasks", "CAPTION"));
        int maxNewTokens = flags.getInt("max-new-tokens", 16);
        int maxTiles = flags.getInt("max-tiles", 1);
        int capacity = flags.getInt("capacity", 16);
        int identityEvents = flags.getInt("identity-events", 3000);
        Path work = Files.createTempDirectory("monostream-bench");
        try {
            Path model = flags.has("model") ? flags.existingPath("model").toAbsolutePath() : DemoModel.extractTo(work);
            Configuration conf = new Configuration();
            conf.setString(MonostreamOptions.MODEL_PATH.key(), model.toString());
            EngineChoice.apply(flags, conf);
            conf.setString(MonostreamOptions.MAX_TILES.key(), String.valueOf(maxTiles));
            conf.setString(MonostreamOptions.MAX_NEW_TOKENS_DEFAULT.key(), String.valueOf(maxNewTokens));
            conf.setString(MonostreamOptions.ASYNC_CAPACITY.key(), String.valueOf(capacity));
            conf.setString(MonostreamOptions.CHECKPOINT_INTERVAL.key(), "500 ms");
            List<byte[]> images = new ArrayList<>();
            for (int i = 0; i < WARMUP + events; i++) {
                images.add(SampleImages.png(SampleImages.numbered(i)));
            }
            System.out.printf("model %s, %d events x %s, %d new tokens, %d tile(s), %d in flight%n",
                    model.getFileName(), events, tasks, maxNewTokens, maxTiles, capacity);
            Figure bare = bareEngine(conf, images, tasks, maxNewTokens, maxTiles, capacity);
            Figure pipeline;
            Figure identity;
            try (EmbeddedKafka kafka = EmbeddedKafka.start()) {
                conf.setString(MonostreamOptions.BOOTSTRAP_SERVERS.key(), kafka.bootstrapServers());
                pipeline = pipeline("pipeline, real engine", kafka, conf, "engine", MonostreamPipeline.modelFunction(conf),
                        images, events, tasks);
                List<byte[]> cycled = new ArrayList<>();
                for (int i = 0; i < WARMUP + identityEvents; i++) {
                    cycled.add(images.get(i % images.size()));
                }
                identity = pipeline("pipeline, identity model stage", kafka, conf, "identity", new IdentityModelStage(),
                        cycled, identityEvents, tasks);
            }
            System.out.println();
            System.out.println("| run                            | events | results | seconds | events/s |");
            System.out.println("|--------------------------------|-------:|--------:|--------:|---------:|");
            for (Figure f : List.of(bare, pipeline, identity)) {
                System.out.printf("| %-30s | %6d | %7d | %7.2f | %8.1f |%n", f.what(), f.events(), f.results(), f.seconds(),
                        f.eventsPerSecond());
            }
            System.out.printf("%npipeline / bare engine = %.3f (target >= 0.9)%n", pipeline.eventsPerSecond() / bare.eventsPerSecond());
            return 0;
        } catch (IOException | RuntimeException e) {
            throw e;
        } catch (Exception e) {
            System.err.println("bench-pipeline: failed: " + e);
            return 1;
        } finally {
            DemoCommand.deleteTree(work);
        }
    }

    /** The engine alone: the same requests the job would make, at most {@code capacity} in flight. */
    private static Figure bareEngine(Configuration conf, List<byte[]> images, List<Task> tasks, int maxNewTokens,
                                     int maxTiles, int capacity) throws Exception {
        try (Engine engine = Engine.open(MonostreamPipeline.engineSpec(conf).toOptions())) {
            run(engine, images.subList(0, WARMUP), tasks, maxNewTokens, maxTiles, capacity);
            long start = System.nanoTime();
            int results = run(engine, images.subList(WARMUP, images.size()), tasks, maxNewTokens, maxTiles, capacity);
            return new Figure("bare engine", images.size() - WARMUP, results, (System.nanoTime() - start) / 1e9);
        }
    }

    private static int run(Engine engine, List<byte[]> images, List<Task> tasks, int maxNewTokens, int maxTiles,
                           int capacity) throws Exception {
        Semaphore inFlight = new Semaphore(capacity);
        List<CompletableFuture<GenerationResult>> all = new ArrayList<>();
        for (int i = 0; i < images.size(); i++) {
            for (Task t : tasks) {
                inFlight.acquire();
                CompletableFuture<GenerationResult> f = engine.submit(TaskRequestCall.requestFor("bare-" + i + "/" + t,
                        images.get(i), t.name(), null, maxNewTokens, maxTiles).build());
                f.whenComplete((r, e) -> inFlight.release());
                all.add(f);
            }
        }
        CompletableFuture.allOf(all.toArray(CompletableFuture[]::new)).get();
        return all.size();
    }

    /**
     * The job on its own topics: warm up (engine loaded, first checkpoints done), then time from the
     * first measured event produced to the last of its results committed.
     */
    private static Figure pipeline(String what, EmbeddedKafka kafka, Configuration base, String name,
                                   AsyncFunction<TaskRequest, Outcome> model, List<byte[]> images, int events,
                                   List<Task> tasks) throws Exception {
        Configuration conf = new Configuration(base);
        String in = "bench-" + name + "-images";
        List<String> outs = List.of("bench-" + name + "-captions", "bench-" + name + "-ocr", "bench-" + name + "-dead");
        conf.setString(MonostreamOptions.TOPIC_IMAGES.key(), in);
        conf.setString(MonostreamOptions.TOPIC_CAPTIONS.key(), outs.get(0));
        conf.setString(MonostreamOptions.TOPIC_OCR.key(), outs.get(1));
        conf.setString(MonostreamOptions.TOPIC_DEAD_LETTERS.key(), outs.get(2));
        conf.setString(MonostreamOptions.GROUP_ID.key(), "bench-" + name);
        conf.setString(MonostreamOptions.TRANSACTIONAL_ID_PREFIX.key(), "bench-" + name);
        kafka.createTopics(1, in);
        kafka.createTopics(1, outs.toArray(String[]::new));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        MonostreamPipeline.configure(env, conf);
        DataStream<Outcome> outcomes = MonostreamPipeline.outcomes(env, conf, model);
        MonostreamPipeline.sinks(outcomes, conf);
        JobClient job = env.executeAsync("bench " + name);
        Map<String, Object> p = Map.of(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, kafka.bootstrapServers(),
                ProducerConfig.LINGER_MS_CONFIG, 5,
                ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class,
                ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
        WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
        int perEvent = tasks.size();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
             TopicReader reader = new TopicReader(kafka.bootstrapServers(), new Properties(), outs, true)) {
            send(producer, wire, in, images, 0, WARMUP, tasks);
            int seen = await(reader, WARMUP * perEvent, 0, job);
            long start = System.nanoTime();
            send(producer, wire, in, images, WARMUP, WARMUP + events, tasks);
            await(reader, (WARMUP + events) * perEvent, seen, job);
            return new Figure(what, events, events * perEvent, (System.nanoTime() - start) / 1e9);
        } finally {
            job.cancel().get(30, TimeUnit.SECONDS);
        }
    }

    private static void send(KafkaProducer<byte[], byte[]> producer, WireFormat<ImageEvent> wire, String topic,
                             List<byte[]> images, int from, int to, List<Task> tasks) {
        for (int i = from; i < to; i++) {
            String id = "e" + i;
            producer.send(new ProducerRecord<>(topic, id.getBytes(StandardCharsets.UTF_8),
                    wire.encode(ImageEvents.inline(id, images.get(i), tasks, Map.of()))));
        }
        producer.flush();
    }

    /** Reads outputs until {@code total} have been seen; fails on a dead letter or a stopped job. */
    private static int await(TopicReader reader, int total, int seen, JobClient job) throws Exception {
        long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
        while (seen < total) {
            if (System.nanoTime() > deadline || job.getJobStatus().get().isGloballyTerminalState()) {
                throw new IllegalStateException("only " + seen + " of " + total + " outputs; job " + job.getJobStatus().get());
            }
            for (var r : reader.poll(Duration.ofMillis(100))) {
                if (r.topic().endsWith("-dead")) {
                    throw new IllegalStateException("unexpected dead letter: " + TailCommand.line(r.value()));
                }
                seen++;
            }
        }
        return seen;
    }
}

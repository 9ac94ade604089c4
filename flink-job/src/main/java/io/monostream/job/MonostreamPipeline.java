package io.monostream.job;

import io.monostream.flink.EngineSpec;
import io.monostream.flink.ModelAsyncFunction;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.DeliveryGuarantee;
import org.apache.flink.connector.kafka.sink.KafkaRecordSerializationSchema;
import org.apache.flink.connector.kafka.sink.KafkaSink;
import org.apache.flink.connector.kafka.source.KafkaSource;
import org.apache.flink.connector.kafka.source.KafkaSourceBuilder;
import org.apache.flink.connector.kafka.source.enumerator.initializer.OffsetsInitializer;
import org.apache.flink.streaming.api.CheckpointingMode;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.async.AsyncFunction;
import org.apache.flink.streaming.api.functions.async.AsyncRetryStrategy;
import org.apache.flink.streaming.util.retryable.AsyncRetryStrategies;
import org.apache.kafka.clients.consumer.OffsetResetStrategy;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Collection;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * The job's topology (architecture.md, "Data flow"):
 * KafkaSource → resolve/check/fan-out → model (async, retried, timed out) → route → 3 KafkaSinks,
 * exactly-once with checkpointing on.
 *
 * <pre>{@code
 * StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
 * MonostreamPipeline.build(env, conf);
 * env.execute("monostream");
 * }</pre>
 */
public final class MonostreamPipeline {
    private MonostreamPipeline() {}

    /** Checkpointing, parallelism and the whole topology. */
    public static void build(StreamExecutionEnvironment env, Configuration conf) {
        configure(env, conf);
        sinks(outcomes(env, conf, modelFunction(conf)), conf);
    }

    public static void configure(StreamExecutionEnvironment env, Configuration conf) {
        env.setParallelism(conf.get(MonostreamOptions.PARALLELISM));
        env.enableCheckpointing(conf.get(MonostreamOptions.CHECKPOINT_INTERVAL).toMillis(), CheckpointingMode.EXACTLY_ONCE);
    }

    /** The production model stage: the TaskManager's shared real engine. */
    public static ModelAsyncFunction<TaskRequest, Outcome> modelFunction(Configuration conf) {
        return new ModelAsyncFunction<>(engineSpec(conf), TaskRequestCall.from(conf));
    }

    public static EngineSpec engineSpec(Configuration conf) {
        return new EngineSpec(conf.get(MonostreamOptions.MODEL_PATH), conf.get(MonostreamOptions.MODEL_DTYPE),
                conf.get(MonostreamOptions.MODEL_DEVICE), conf.get(MonostreamOptions.MODEL_THREADS),
                conf.get(MonostreamOptions.LIMIT_MAX_BYTES), conf.get(MonostreamOptions.LIMIT_MAX_PIXELS),
                conf.get(MonostreamOptions.MODEL_QUEUE_CAPACITY), conf.get(MonostreamOptions.MODEL_MAX_BATCH),
                conf.get(MonostreamOptions.MODEL_KV_CACHE_BYTES), conf.get(MonostreamOptions.MODEL_MAX_PREFILL_TOKENS));
    }

    /**
     * Source to outcomes: every input ends as one outcome per task or one dead-letter outcome.
     * {@code model} is {@link #modelFunction} in production ({@code bench-pipeline} swaps in an identity stage).
     */
    public static DataStream<Outcome> outcomes(StreamExecutionEnvironment env, Configuration conf,
                                               AsyncFunction<TaskRequest, Outcome> model) {
        DataStream<InboundEvent> events = env.fromSource(source(conf), WatermarkStrategy.noWatermarks(), "images")
                .uid("source").name("KafkaSource images");
        ResolveSettings settings = ResolveSettings.from(conf);
        // claim checks are fetched asynchronously, so a slow server never blocks the task thread
        DataStream<InboundEvent> fetched = AsyncDataStream.unorderedWait(events, new FetchStage(settings),
                        FetchStage.timeoutMillis(settings), TimeUnit.MILLISECONDS, conf.get(MonostreamOptions.ASYNC_CAPACITY))
                .uid("fetch").name("fetch by URI (async)");
        SingleOutputStreamOperator<TaskRequest> requests = fetched
                .process(new ResolveStage(settings)).uid("resolve").name("limits + fan-out");
        Duration timeout = conf.get(MonostreamOptions.ASYNC_TIMEOUT);
        DataStream<Outcome> answered = AsyncDataStream.unorderedWaitWithRetry(requests, model,
                        timeout.toMillis(), TimeUnit.MILLISECONDS, conf.get(MonostreamOptions.ASYNC_CAPACITY),
                        retryStrategy(conf))
                .returns(Outcome.class) // the generic function hides OUT from type extraction
                .uid("model").name("model (async)");
        return answered.union(requests.getSideOutput(ResolveStage.FAILURES));
    }

    static AsyncRetryStrategy<Outcome> retryStrategy(Configuration conf) {
        return new AsyncRetryStrategies.FixedDelayRetryStrategyBuilder<Outcome>(
                conf.get(MonostreamOptions.ASYNC_RETRIES), conf.get(MonostreamOptions.ASYNC_RETRY_DELAY).toMillis())
                .ifResult(new RetryableOutcome())
                .build();
    }

    /** Retry only what the engine called transient (overloaded); everything else is final. */
    static final class RetryableOutcome implements Predicate<Collection<Outcome>>, Serializable {
        private static final long serialVersionUID = 1L;

        @Override
        public boolean test(Collection<Outcome> outcomes) {
            return outcomes != null && outcomes.stream().anyMatch(o -> o.retryable);
        }
    }

    public static KafkaSource<InboundEvent> source(Configuration conf) {
        Properties props = MonostreamOptions.kafkaProperties(conf);
        props.putIfAbsent("isolation.level", "read_committed");
        KafkaSourceBuilder<InboundEvent> b = KafkaSource.<InboundEvent>builder()
                .setBootstrapServers(conf.get(MonostreamOptions.BOOTSTRAP_SERVERS))
                .setTopics(conf.get(MonostreamOptions.TOPIC_IMAGES))
                .setGroupId(conf.get(MonostreamOptions.GROUP_ID))
                .setStartingOffsets(OffsetsInitializer.committedOffsets(OffsetResetStrategy.EARLIEST))
                .setDeserializer(new ImageEventDeserializer())
                .setProperties(props);
        if (conf.get(MonostreamOptions.SOURCE_BOUNDED)) {
            b.setBounded(OffsetsInitializer.latest());
        }
        return b.build();
    }

    /** Routes outcomes to the captions, ocr and dead-letters topics, exactly once. */
    public static void sinks(DataStream<Outcome> outcomes, Configuration conf) {
        SingleOutputStreamOperator<Outcome> routed = outcomes.process(new RouteOutcomes()).uid("route").name("route");
        routed.sinkTo(sink(conf, MonostreamOptions.TOPIC_CAPTIONS.key(), conf.get(MonostreamOptions.TOPIC_CAPTIONS),
                OutcomeEncoder.Kind.CAPTION)).uid("sink-captions").name("KafkaSink captions");
        routed.getSideOutput(RouteOutcomes.OCR).sinkTo(sink(conf, MonostreamOptions.TOPIC_OCR.key(),
                conf.get(MonostreamOptions.TOPIC_OCR), OutcomeEncoder.Kind.OCR)).uid("sink-ocr").name("KafkaSink ocr");
        routed.getSideOutput(RouteOutcomes.DEAD_LETTERS).sinkTo(sink(conf, MonostreamOptions.TOPIC_DEAD_LETTERS.key(),
                        conf.get(MonostreamOptions.TOPIC_DEAD_LETTERS), OutcomeEncoder.Kind.DEAD_LETTER))
                .uid("sink-dead-letters").name("KafkaSink dead-letters");
    }

    private static KafkaSink<Outcome> sink(Configuration conf, String name, String topic, OutcomeEncoder.Kind kind) {
        Properties props = MonostreamOptions.kafkaProperties(conf);
        // Must exceed the checkpoint interval plus recovery time, and stay under the broker's
        // transaction.max.timeout.ms (15 min by default).
        props.putIfAbsent("transaction.timeout.ms", "600000");
        return KafkaSink.<Outcome>builder()
                .setBootstrapServers(conf.get(MonostreamOptions.BOOTSTRAP_SERVERS))
                .setKafkaProducerConfig(props)
                .setDeliveryGuarantee(DeliveryGuarantee.EXACTLY_ONCE)
                .setTransactionalIdPrefix(conf.get(MonostreamOptions.TRANSACTIONAL_ID_PREFIX) + "-" + name.replace('.', '-'))
                .setRecordSerializer(KafkaRecordSerializationSchema.<Outcome>builder()
                        .setTopic(topic)
                        .setKeySerializationSchema(new IdKey())
                        .setValueSerializationSchema(new OutcomeEncoder(kind))
                        .build())
                .build();
    }

    /** The event id as the record key, so all outputs of one event land in one partition. */
    static final class IdKey implements SerializationSchema<Outcome> {
        private static final long serialVersionUID = 1L;

        @Override
        public byte[] serialize(Outcome o) {
            return o.origin.id == null ? null : o.origin.id.getBytes(StandardCharsets.UTF_8);
        }
    }
}

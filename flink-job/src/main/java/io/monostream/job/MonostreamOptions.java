package io.monostream.job;

import io.monostream.runtime.EngineOptions;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.Configuration;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * Every setting of the job, with a default that runs on a laptop. On the command line each is
 * {@code --<key> value}; keys starting with {@code kafka.} are passed to the Kafka clients with
 * the prefix removed (e.g. {@code --kafka.security.protocol SASL_SSL}).
 */
public final class MonostreamOptions {
    private MonostreamOptions() {}

    public static final String KAFKA_PROPERTY_PREFIX = "kafka.";

    public static final ConfigOption<String> BOOTSTRAP_SERVERS = ConfigOptions.key("bootstrap-servers")
            .stringType().defaultValue("localhost:9092").withDescription("Kafka bootstrap servers.");
    public static final ConfigOption<String> TOPIC_IMAGES = ConfigOptions.key("topic.images")
            .stringType().defaultValue("images").withDescription("Input topic of ImageEvents.");
    public static final ConfigOption<String> TOPIC_CAPTIONS = ConfigOptions.key("topic.captions")
            .stringType().defaultValue("captions").withDescription("Output topic of CaptionResults (CAPTION, DETAILED_CAPTION).");
    public static final ConfigOption<String> TOPIC_OCR = ConfigOptions.key("topic.ocr")
            .stringType().defaultValue("ocr").withDescription("Output topic of OcrResults.");
    public static final ConfigOption<String> TOPIC_DEAD_LETTERS = ConfigOptions.key("topic.dead-letters")
            .stringType().defaultValue("dead-letters").withDescription("Output topic of DeadLetters.");
    public static final ConfigOption<String> GROUP_ID = ConfigOptions.key("group-id")
            .stringType().defaultValue("monostream").withDescription("Kafka consumer group of the source.");
    public static final ConfigOption<String> TRANSACTIONAL_ID_PREFIX = ConfigOptions.key("transactional-id-prefix")
            .stringType().defaultValue("monostream").withDescription("Prefix of the sinks' Kafka transactional ids; unique per job on a cluster.");
    public static final ConfigOption<Boolean> SOURCE_BOUNDED = ConfigOptions.key("source.bounded")
            .booleanType().defaultValue(false).withDescription("Stop at the offsets that are latest when the job starts (replays, tests).");

    public static final ConfigOption<String> MODEL_PATH = ConfigOptions.key("model.path")
            .stringType().defaultValue("model").withDescription("Checkpoint directory (config.json, safetensors, tokenizer).");
    public static final ConfigOption<String> MODEL_DTYPE = ConfigOptions.key("model.dtype")
            .stringType().defaultValue("f32").withDescription("f32 or bf16.");
    public static final ConfigOption<String> MODEL_DEVICE = ConfigOptions.key("model.device")
            .stringType().defaultValue("cpu").withDescription("cpu, cuda or cuda:N.");
    public static final ConfigOption<Integer> MODEL_THREADS = ConfigOptions.key("model.threads")
            .intType().defaultValue(0).withDescription("Intra-op threads of the engine; 0 = libtorch's default.");
    public static final ConfigOption<Integer> MODEL_QUEUE_CAPACITY = ConfigOptions.key("model.queue-capacity")
            .intType().defaultValue(64).withDescription("Requests the shared engine admits before refusing (OVERLOADED, retried).");
    public static final ConfigOption<Integer> MODEL_MAX_BATCH = ConfigOptions.key("model.max-batch")
            .intType().defaultValue(8).withDescription("Sequences the engine decodes together (continuous batching).");
    public static final ConfigOption<Long> MODEL_KV_CACHE_BYTES = ConfigOptions.key("model.kv-cache-bytes")
            .longType().defaultValue(2L << 30).withDescription("KV cache memory the engine may reserve; a request reserves its prompt plus max_new_tokens when admitted.");
    public static final ConfigOption<Integer> MODEL_MAX_PREFILL_TOKENS = ConfigOptions.key("model.max-prefill-tokens")
            .intType().defaultValue(EngineOptions.DEFAULT_MAX_PREFILL_TOKENS).withDescription("Prompt tokens one prefill pass runs: requests"
                    + " are prefilled together only while their prompts fit, longer prompts in chunks of this size with decode steps"
                    + " between them, short prompts that arrive meanwhile join within half a pass and long ones behind; bounds prefill"
                    + " working memory.");

    public static final ConfigOption<Long> LIMIT_MAX_BYTES = ConfigOptions.key("limits.max-bytes")
            .longType().defaultValue(32L << 20).withDescription("Largest encoded image, in bytes.");
    public static final ConfigOption<Long> LIMIT_MAX_PIXELS = ConfigOptions.key("limits.max-pixels")
            .longType().defaultValue(40_000_000L).withDescription("Largest image by its header's width x height.");
    public static final ConfigOption<Integer> MAX_NEW_TOKENS_DEFAULT = ConfigOptions.key("request.max-new-tokens")
            .intType().defaultValue(128).withDescription("Tokens generated when an event does not say.");
    public static final ConfigOption<Integer> MAX_NEW_TOKENS_LIMIT = ConfigOptions.key("request.max-new-tokens-limit")
            .intType().defaultValue(2048).withDescription("Events asking for more, or for fewer than 1, are INVALID_REQUEST.");

    public static final ConfigOption<Integer> MAX_TILES = ConfigOptions.key("request.max-tiles")
            .intType().defaultValue(0).withDescription("Most 448x448 tiles per image (each costs 256 image tokens); 0 = the checkpoint's max_dynamic_patch.");

    public static final ConfigOption<List<String>> FETCH_ALLOWED_ROOTS = ConfigOptions.key("fetch.allowed-roots")
            .stringType().asList().defaultValues().withDescription("Directories file: URIs may name (';'-separated); none = file: refused.");
    public static final ConfigOption<List<String>> FETCH_ALLOWED_HOSTS = ConfigOptions.key("fetch.allowed-hosts")
            .stringType().asList().defaultValues().withDescription("Hosts http(s): URIs may name (';'-separated); none = http refused.");
    public static final ConfigOption<Boolean> FETCH_ALLOW_PRIVATE = ConfigOptions.key("fetch.allow-private-addresses")
            .booleanType().defaultValue(false).withDescription("Let allow-listed hosts resolve to loopback/private/link-local addresses.");
    public static final ConfigOption<Duration> FETCH_CONNECT_TIMEOUT = ConfigOptions.key("fetch.connect-timeout")
            .durationType().defaultValue(Duration.ofSeconds(5)).withDescription("HTTP connect timeout.");
    public static final ConfigOption<Duration> FETCH_READ_TIMEOUT = ConfigOptions.key("fetch.read-timeout")
            .durationType().defaultValue(Duration.ofSeconds(20)).withDescription("HTTP whole-response timeout.");
    public static final ConfigOption<Long> FETCH_MAX_BYTES = ConfigOptions.key("fetch.max-bytes")
            .longType().defaultValue(32L << 20).withDescription("Largest body fetched by URI (also capped by limits.max-bytes).");
    public static final ConfigOption<Integer> FETCH_THREADS = ConfigOptions.key("fetch.threads")
            .intType().defaultValue(4).withDescription("Threads per subtask that fetch images named by URI (off the task thread).");

    public static final ConfigOption<Duration> ASYNC_TIMEOUT = ConfigOptions.key("async.timeout")
            .durationType().defaultValue(Duration.ofMinutes(5)).withDescription("Model stage timeout per request, retries included (MODEL_TIMEOUT).");
    public static final ConfigOption<Integer> ASYNC_CAPACITY = ConfigOptions.key("async.capacity")
            .intType().defaultValue(16).withDescription("Requests in flight per model subtask.");
    public static final ConfigOption<Integer> ASYNC_RETRIES = ConfigOptions.key("async.retries")
            .intType().defaultValue(3).withDescription("Retries of a transient engine failure (OVERLOADED).");
    public static final ConfigOption<Duration> ASYNC_RETRY_DELAY = ConfigOptions.key("async.retry-delay")
            .durationType().defaultValue(Duration.ofMillis(500)).withDescription("Delay between retries.");

    public static final ConfigOption<Integer> PARALLELISM = ConfigOptions.key("parallelism")
            .intType().defaultValue(1).withDescription("Parallelism of every operator.");
    public static final ConfigOption<Duration> CHECKPOINT_INTERVAL = ConfigOptions.key("checkpoint.interval")
            .durationType().defaultValue(Duration.ofSeconds(10)).withDescription("Checkpoint interval; results are committed to Kafka on each checkpoint.");

    /** Every option declared above, in declaration order (for --help and the parser). */
    public static List<ConfigOption<?>> all() {
        List<ConfigOption<?>> out = new ArrayList<>();
        for (Field f : MonostreamOptions.class.getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers()) && f.getType() == ConfigOption.class) {
                try {
                    out.add((ConfigOption<?>) f.get(null));
                } catch (IllegalAccessException e) {
                    throw new IllegalStateException(e);
                }
            }
        }
        return out;
    }

    /** The {@code kafka.}-prefixed keys of {@code conf}, prefix removed: security and tuning for every client. */
    public static Properties kafkaProperties(Configuration conf) {
        Properties p = new Properties();
        conf.toMap().forEach((k, v) -> {
            if (k.startsWith(KAFKA_PROPERTY_PREFIX)) {
                p.setProperty(k.substring(KAFKA_PROPERTY_PREFIX.length()), v);
            }
        });
        return p;
    }
}

package io.monostream.cli;

import io.monostream.local.OutputRecord;
import io.monostream.schema.WireFormatException;

import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * {@code tail}: prints the records of the job's topics (results, dead letters, also input events)
 * one line each, as a downstream consumer sees them: {@code read_committed}, so only results of
 * completed checkpoints. Records are decoded by the schema fingerprint in their header.
 */
final class TailCommand {
    static final String USAGE = """
            usage: monostream tail --bootstrap-servers HOST:PORT --topic TOPIC[,TOPIC...] [--from-beginning] [--max N]
                                   [--timeout SECONDS] [--kafka.<property> VALUE ...]

              --from-beginning   start at the oldest record [only records that arrive from now on]
              --max N            stop after N records
              --timeout SECONDS  stop when no record arrived for this long [never]
            """;

    private TailCommand() {}

    static int run(String[] args) {
        KafkaFlags kafka = KafkaFlags.split("tail", args);
        Flags flags = Flags.parse("tail", kafka.rest(), Set.of("bootstrap-servers", "topic", "max", "timeout"),
                Set.of("from-beginning", "help"));
        if (flags.has("help")) {
            System.out.print(USAGE);
            return 0;
        }
        if (!flags.positional().isEmpty()) {
            throw new UsageException("tail: unexpected arguments " + flags.positional());
        }
        String servers = flags.required("bootstrap-servers");
        List<String> topics = Arrays.stream(flags.required("topic").split(",")).map(String::trim)
                .filter(s -> !s.isEmpty()).toList();
        long max = flags.getInt("max", Integer.MAX_VALUE);
        int timeoutSeconds = flags.getInt("timeout", 0);
        Duration idle = timeoutSeconds > 0 ? Duration.ofSeconds(timeoutSeconds) : null;
        long printed = 0;
        try (TopicReader reader = new TopicReader(servers, kafka.properties(), topics, flags.has("from-beginning"))) {
            long lastRecord = System.nanoTime();
            while (printed < max) {
                List<ConsumerRecord<byte[], byte[]>> batch = reader.poll(Duration.ofMillis(250));
                if (batch.isEmpty()) {
                    if (idle != null && System.nanoTime() - lastRecord > idle.toNanos()) {
                        break;
                    }
                    continue;
                }
                lastRecord = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (printed >= max) {
                        break;
                    }
                    printed++;
                    System.out.println(r.topic() + "[" + r.partition() + "]@" + r.offset() + "  " + line(r.value()));
                }
                System.out.flush();
            }
        }
        return 0;
    }

    static String line(byte[] value) {
        try {
            return OutputRecord.format(OutputRecord.decode(value));
        } catch (WireFormatException e) {
            return "undecodable (" + (value == null ? 0 : value.length) + " bytes): " + e.getMessage();
        }
    }
}

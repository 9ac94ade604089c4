package io.monostream.cli;

import io.monostream.schema.ImageEvent;
import io.monostream.schema.Task;
import io.monostream.schema.WireFormat;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;

/**
 * {@code produce}: image files as ImageEvents on a topic, inline or (with {@code --by-reference})
 * as {@code file:} URIs, which the job fetches only from its allowed roots. The event id is the
 * file name; the attribute {@code file} holds the path.
 */
final class ProduceCommand {
    static final String USAGE = """
            usage: monostream produce --bootstrap-servers HOST:PORT --topic TOPIC [--tasks CAPTION,OCR] [--by-reference]
                                      [--kafka.<property> VALUE ...] FILE|DIR...

              --tasks T,T        CAPTION, DETAILED_CAPTION and/or OCR [CAPTION]
              --by-reference     send file: URIs (absolute paths) instead of the bytes; the job must allow their
                                 directory (--fetch.allowed-roots)
              --kafka.<property> passed to the Kafka producer, e.g. --kafka.security.protocol SASL_SSL
              A DIR contributes its image files (png, jpg, jpeg, gif, bmp, tif, tiff, webp), sorted by name.
            """;
    private static final Set<String> IMAGE_SUFFIXES = Set.of("png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp");

    private ProduceCommand() {}

    static int run(String[] args) throws IOException {
        KafkaFlags kafka = KafkaFlags.split("produce", args);
        Flags flags = Flags.parse("produce", kafka.rest(), Set.of("bootstrap-servers", "topic", "tasks"),
                Set.of("by-reference", "help"));
        if (flags.has("help")) {
            System.out.print(USAGE);
            return 0;
        }
        String servers = flags.required("bootstrap-servers");
        String topic = flags.required("topic");
        List<Task> tasks = ImageEvents.parseTasks(flags.get("tasks", "CAPTION"));
        boolean byReference = flags.has("by-reference");
        List<Path> files = files(flags.positional());
        if (files.isEmpty()) {
            throw new UsageException("produce: no image files given (see --help)");
        }
        Properties p = new Properties();
        p.putAll(kafka.properties());
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, servers);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.putIfAbsent(ProducerConfig.MAX_REQUEST_SIZE_CONFIG, String.valueOf(16 << 20));
        WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (Path f : files) {
                Path abs = f.toAbsolutePath().normalize();
                String id = abs.getFileName().toString();
                Map<String, String> attributes = Map.of("file", abs.toString());
                ImageEvent e = byReference
                        ? ImageEvents.byReference(id, abs.toUri().toString(), tasks, attributes)
                        : ImageEvents.inline(id, Files.readAllBytes(abs), tasks, attributes);
                byte[] value = wire.encode(e);
                RecordMetadata m = producer.send(new ProducerRecord<>(topic, id.getBytes(StandardCharsets.UTF_8), value)).get();
                System.out.printf("sent %s %s (%d bytes) to %s[%d]@%d%n", id, tasks,
                        value.length, m.topic(), m.partition(), m.offset());
            }
        } catch (ExecutionException e) {
            System.err.println("error: produce failed: " + e.getCause());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return 1;
        }
        return 0;
    }

    /** Files as given; directories expanded to their image files, sorted. */
    static List<Path> files(List<String> args) throws IOException {
        List<Path> out = new ArrayList<>();
        for (String a : args) {
            Path p = Path.of(a);
            if (Files.isDirectory(p)) {
                try (Stream<Path> s = Files.list(p)) {
                    s.filter(Files::isRegularFile).filter(ProduceCommand::isImageName).sorted().forEach(out::add);
                }
            } else if (Files.isRegularFile(p)) {
                out.add(p);
            } else {
                throw new UsageException("produce: no such file or directory: " + a);
            }
        }
        return out;
    }

    private static boolean isImageName(Path p) {
        String name = p.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 && IMAGE_SUFFIXES.contains(name.substring(dot + 1).toLowerCase(Locale.ROOT));
    }
}

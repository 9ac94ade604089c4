package io.monostream.job;

import io.monostream.schema.ImageEvent;
import io.monostream.schema.ImageReference;
import io.monostream.schema.InlineImage;
import io.monostream.schema.ReasonCode;
import io.monostream.schema.Task;
import io.monostream.schema.WireFormat;

import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.connector.kafka.source.reader.deserializer.KafkaRecordDeserializationSchema;
import org.apache.flink.metrics.Counter;
import org.apache.flink.util.Collector;
import org.apache.kafka.clients.consumer.ConsumerRecord;

import java.nio.ByteBuffer;
import java.util.Map;

/**
 * Kafka record → {@link InboundEvent}. Never throws: bytes that are not an ImageEvent become an
 * event carrying an UNDECODABLE_EVENT failure, so one bad record never stops the job.
 */
public final class ImageEventDeserializer implements KafkaRecordDeserializationSchema<InboundEvent> {
    private static final long serialVersionUID = 1L;

    private transient WireFormat<ImageEvent> wire;
    private transient Counter eventsIn;

    @Override
    public void open(DeserializationSchema.InitializationContext context) {
        wire = WireFormat.of(ImageEvent.class);
        eventsIn = context.getMetricGroup().counter("eventsIn");
    }

    @Override
    public void deserialize(ConsumerRecord<byte[], byte[]> record, Collector<InboundEvent> out) {
        if (eventsIn != null) {
            eventsIn.inc();
        }
        out.collect(toInbound(record.value(), record.topic(), record.partition(), record.offset()));
    }

    /** The whole conversion; package-visible for tests. */
    InboundEvent toInbound(byte[] value, String topic, int partition, long offset) {
        if (wire == null) {
            wire = WireFormat.of(ImageEvent.class);
        }
        InboundEvent in = new InboundEvent();
        in.origin.original = value == null ? new byte[0] : value;
        in.origin.topic = topic;
        in.origin.partition = partition;
        in.origin.offset = offset;
        in.origin.eventTime = System.currentTimeMillis();
        try {
            if (value == null) {
                throw new IllegalArgumentException("null record value (tombstone)");
            }
            ImageEvent e = wire.decode(value);
            in.origin.id = e.getId();
            for (Map.Entry<String, String> a : e.getAttributes().entrySet()) {
                in.origin.attributes.put(a.getKey(), a.getValue());
            }
            if (e.getEventTime() != null) {
                in.origin.eventTime = e.getEventTime().toEpochMilli();
            }
            Object image = e.getImage();
            if (image instanceof InlineImage inline) {
                in.image = bytes(inline.getData());
            } else if (image instanceof ImageReference ref) {
                in.uri = ref.getUri();
            }
            in.contentType = e.getContentType();
            for (Task t : e.getTasks()) {
                in.tasks.add(t.name());
            }
            in.prompt = e.getPrompt();
            in.maxNewTokens = e.getMaxNewTokens();
        } catch (Exception | LinkageError | OutOfMemoryError err) {
            in.failure = Failure.of(ReasonCode.UNDECODABLE_EVENT, "source", String.valueOf(err.getMessage()));
        }
        return in;
    }

    private static byte[] bytes(ByteBuffer b) {
        ByteBuffer d = b.duplicate();
        byte[] out = new byte[d.remaining()];
        d.get(out);
        return out;
    }

    @Override
    public TypeInformation<InboundEvent> getProducedType() {
        return TypeInformation.of(InboundEvent.class);
    }
}

package io.monostream.schema;

import org.apache.avro.Schema;
import org.apache.avro.message.BadHeaderException;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.MissingSchemaException;
import org.apache.avro.message.SchemaStore;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * The wire format of one record type: Avro single-object encoding (a 2-byte marker, the
 * writer schema's 64-bit fingerprint, then the binary record), so a reader knows which schema
 * wrote each message without a registry. Records written with an older schema are resolved
 * into the current one as long as that older schema was registered with {@link #withWriterSchema}.
 *
 * <pre>{@code
 * WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
 * byte[] bytes = wire.encode(event);
 * ImageEvent back = wire.decode(bytes);   // throws WireFormatException, never anything else
 * }</pre>
 *
 * Instances are thread-safe (Avro's encoder and decoder are) and cheap to keep per operator.
 */
public final class WireFormat<T extends SpecificRecord> {
    private final Class<T> type;
    private final Schema schema;
    private final SchemaStore.Cache writerSchemas;
    private final BinaryMessageEncoder<T> encoder;
    private final BinaryMessageDecoder<T> decoder;

    private WireFormat(Class<T> type, Schema schema, SchemaStore.Cache writerSchemas) {
        this.type = type;
        this.schema = schema;
        this.writerSchemas = writerSchemas;
        SpecificData model = SpecificData.getForClass(type);
        this.encoder = new BinaryMessageEncoder<>(model, schema);
        this.decoder = new BinaryMessageDecoder<>(model, schema, writerSchemas);
    }

    /** The wire format of a generated record class, reading the schemas this build knows for it. */
    public static <T extends SpecificRecord> WireFormat<T> of(Class<T> type) {
        Schema schema = SpecificData.get().getSchema(type);
        SchemaStore.Cache store = new SchemaStore.Cache();
        for (Schema older : SchemaHistory.olderVersions(schema.getFullName())) {
            store.addSchema(older);
        }
        return new WireFormat<>(type, schema, store);
    }

    /** Also accept messages written with {@code writer} (an older or newer version of this record). */
    public WireFormat<T> withWriterSchema(Schema writer) {
        writerSchemas.addSchema(writer);
        return this;
    }

    public Class<T> type() {
        return type;
    }

    public Schema schema() {
        return schema;
    }

    public byte[] encode(T record) {
        Objects.requireNonNull(record, "record");
        try {
            ByteBuffer buf = encoder.encode(record);
            byte[] out = new byte[buf.remaining()];
            buf.get(out);
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Decodes one message. Every way bytes can be wrong (no single-object header, an unknown
     * writer fingerprint, truncated or garbage body) ends as a {@link WireFormatException}.
     */
    public T decode(byte[] message) {
        if (message == null || message.length == 0) {
            throw new WireFormatException("empty message");
        }
        try {
            return decoder.decode(message);
        } catch (BadHeaderException e) {
            throw new WireFormatException("not Avro single-object encoding: " + e.getMessage(), e);
        } catch (MissingSchemaException e) {
            throw new WireFormatException("written with a schema this reader does not know (not a "
                    + schema.getName() + "?): " + e.getMessage(), e);
        } catch (IOException | RuntimeException e) {
            // Avro reports a corrupt body as EOFException, AvroRuntimeException, NegativeArraySize,
            // ArrayIndexOutOfBounds ... depending on where the garbage sits.
            throw new WireFormatException("corrupt " + schema.getName() + ": " + e, e);
        }
    }
}

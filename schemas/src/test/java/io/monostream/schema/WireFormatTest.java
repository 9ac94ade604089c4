package io.monostream.schema;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.SchemaStore;
import org.junit.jupiter.api.Test;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Pins the wire format: single-object encoding, round trips, and schema evolution both ways. */
class WireFormatTest {
    private static final Instant T0 = Instant.ofEpochMilli(1_700_000_000_123L);

    static ImageEvent sampleEvent() {
        return ImageEvent.newBuilder()
                .setId("evt-1")
                .setImage(InlineImage.newBuilder().setData(ByteBuffer.wrap(new byte[] {1, 2, 3})).build())
                .setContentType("image/png")
                .setTasks(List.of(Task.CAPTION, Task.OCR))
                .setPrompt(null)
                .setMaxNewTokens(64)
                .setAttributes(Map.of("tenant", "acme", "page", "3"))
                .setEventTime(T0)
                .build();
    }

    @Test
    void imageEventRoundTripsAndStartsWithTheSingleObjectMarker() {
        WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
        byte[] bytes = wire.encode(sampleEvent());
        assertEquals((byte) 0xC3, bytes[0]);
        assertEquals((byte) 0x01, bytes[1]);
        assertEquals(sampleEvent(), wire.decode(bytes));
    }

    @Test
    void referenceImageRoundTrips() {
        WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
        ImageEvent e = ImageEvent.newBuilder(sampleEvent())
                .setImage(ImageReference.newBuilder().setUri("file:///data/a.png").build()).build();
        ImageEvent back = wire.decode(wire.encode(e));
        assertEquals("file:///data/a.png", ((ImageReference) back.getImage()).getUri());
    }

    @Test
    void resultsAndDeadLettersRoundTrip() {
        Timings t = new Timings(1.5, 2.0, 30.25, 100.0);
        CaptionResult c = CaptionResult.newBuilder().setId("a").setTask(Task.DETAILED_CAPTION).setText("a cat")
                .setModel("tiny").setPrompt("Describe").setPromptTokens(12).setGeneratedTokens(3).setImageTiles(1)
                .setTimings(t).setAttributes(Map.of("k", "v")).setEventTime(T0).build();
        OcrResult o = OcrResult.newBuilder().setId("a").setTask(Task.OCR).setText("HELLO")
                .setModel("tiny").setPrompt("Read").setPromptTokens(12).setGeneratedTokens(2).setImageTiles(2)
                .setTimings(t).setAttributes(Map.of()).setEventTime(T0).build();
        DeadLetter d = DeadLetter.newBuilder().setReason(ReasonCode.FETCH_DENIED).setMessage("no")
                .setStage("resolve").setId(null).setTask(null).setOriginal(ByteBuffer.wrap(new byte[] {9}))
                .setSourceTopic("images").setSourcePartition(0).setSourceOffset(42).setAttributes(Map.of())
                .setTime(T0).build();
        assertEquals(c, WireFormat.of(CaptionResult.class).decode(WireFormat.of(CaptionResult.class).encode(c)));
        assertEquals(o, WireFormat.of(OcrResult.class).decode(WireFormat.of(OcrResult.class).encode(o)));
        assertEquals(d, WireFormat.of(DeadLetter.class).decode(WireFormat.of(DeadLetter.class).encode(d)));
    }

    @Test
    void garbageUnknownSchemaAndTruncationAreWireFormatExceptions() {
        WireFormat<ImageEvent> wire = WireFormat.of(ImageEvent.class);
        byte[] good = wire.encode(sampleEvent());
        assertThrows(WireFormatException.class, () -> wire.decode(new byte[0]));
        assertThrows(WireFormatException.class, () -> wire.decode("hello, not avro".getBytes()));
        byte[] truncated = java.util.Arrays.copyOf(good, good.length - 5);
        assertThrows(WireFormatException.class, () -> wire.decode(truncated));
        // a valid single-object message of another record type: unknown fingerprint
        byte[] other = WireFormat.of(Timings.class).encode(new Timings(1.0, 1.0, 1.0, 1.0));
        WireFormatException e = assertThrows(WireFormatException.class, () -> wire.decode(other));
        assertTrue(e.getMessage().contains("does not know"), e.getMessage());
    }

    /** The current schema plus one optional field: what the next release might write. */
    private static Schema newerImageEventSchema() {
        String json = ImageEvent.getClassSchema().toString()
                .replace("{\"name\":\"event_time\"",
                        "{\"name\":\"priority\",\"type\":[\"null\",\"int\"],\"default\":null},{\"name\":\"event_time\"");
        Schema s = new Schema.Parser().parse(json);
        assertNotNull(s.getField("priority"));
        return s;
    }

    @Test
    void newerWriterWithAnAddedOptionalFieldIsReadByThisReader() {
        Schema newer = newerImageEventSchema();
        GenericRecord r = new GenericData.Record(newer);
        ImageEvent base = sampleEvent();
        for (Schema.Field f : ImageEvent.getClassSchema().getFields()) {
            r.put(f.name(), base.get(f.name()));
        }
        r.put("priority", 7);
        byte[] bytes = encodeGeneric(newer, r);

        assertThrows(WireFormatException.class, () -> WireFormat.of(ImageEvent.class).decode(bytes),
                "an unregistered writer fingerprint is refused, not guessed");
        ImageEvent read = WireFormat.of(ImageEvent.class).withWriterSchema(newer).decode(bytes);
        assertEquals(base, read);
    }

    @Test
    void thisWriterIsReadByANewerReaderWithTheFieldDefaulted() {
        Schema newer = newerImageEventSchema();
        byte[] bytes = WireFormat.of(ImageEvent.class).encode(sampleEvent());
        SchemaStore.Cache store = new SchemaStore.Cache();
        store.addSchema(ImageEvent.getClassSchema());
        BinaryMessageDecoder<GenericRecord> newerReader = new BinaryMessageDecoder<>(genericWithLogicalTypes(), newer, store);
        GenericRecord read = assertDoesNotThrow(() -> newerReader.decode(bytes));
        assertNull(read.get("priority"));
        assertEquals("evt-1", read.get("id").toString());
        assertEquals(64, read.get("max_new_tokens"));
    }

    @Test
    void anOlderWriterKeptInTheSchemaHistoryIsResolvedWithoutRegistration() throws Exception {
        Schema older;
        try (InputStream in = getClass().getResourceAsStream("history/ImageEvent.v1.avsc")) {
            older = new Schema.Parser().parse(in);
        }
        assertNull(older.getField("max_new_tokens"));
        GenericRecord r = new GenericData.Record(older);
        ImageEvent base = sampleEvent();
        for (Schema.Field f : older.getFields()) {
            Object v = base.get(f.name());
            if (f.name().equals("tasks")) {
                Schema enumSchema = f.schema().getElementType();
                v = List.of(new GenericData.EnumSymbol(enumSchema, "CAPTION"));
            }
            r.put(f.name(), v);
        }
        ImageEvent read = WireFormat.of(ImageEvent.class).decode(encodeGeneric(older, r));
        assertEquals("evt-1", read.getId());
        assertNull(read.getMaxNewTokens());
        assertEquals(List.of(Task.CAPTION), read.getTasks());
    }

    @Test
    void aTaskSymbolFromTheFutureReadsAsUnknown() {
        Schema newer = new Schema.Parser().parse(ImageEvent.getClassSchema().toString()
                .replace("\"OCR\",\"UNKNOWN\"", "\"OCR\",\"TABLE\",\"UNKNOWN\""));
        GenericRecord r = new GenericData.Record(newer);
        ImageEvent base = sampleEvent();
        for (Schema.Field f : newer.getFields()) {
            r.put(f.name(), base.get(f.name()));
        }
        Schema taskSchema = newer.getField("tasks").schema().getElementType();
        r.put("tasks", List.of(new GenericData.EnumSymbol(taskSchema, "TABLE")));
        ImageEvent read = WireFormat.of(ImageEvent.class).withWriterSchema(newer).decode(encodeGeneric(newer, r));
        assertEquals(List.of(Task.UNKNOWN), read.getTasks());
    }

    private static GenericData genericWithLogicalTypes() {
        GenericData g = new GenericData();
        g.addLogicalTypeConversion(new org.apache.avro.data.TimeConversions.TimestampMillisConversion());
        return g;
    }

    private static byte[] encodeGeneric(Schema schema, GenericRecord r) {
        try {
            ByteBuffer b = new BinaryMessageEncoder<GenericRecord>(genericWithLogicalTypes(), schema).encode(r);
            byte[] out = new byte[b.remaining()];
            b.get(out);
            return out;
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}

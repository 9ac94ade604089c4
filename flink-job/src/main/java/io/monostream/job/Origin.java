package io.monostream.job;

import java.util.HashMap;

/**
 * Where an event came from and what every output of it carries: the original bytes (for the
 * dead letter), its Kafka coordinates, id, attributes and event time. A Flink POJO (mutable
 * HashMap, never List.of/Map.of, which Kryo cannot copy).
 */
public class Origin {
    public byte[] original;
    public String topic;
    public int partition;
    public long offset;
    /** null when the event could not be decoded. */
    public String id;
    public HashMap<String, String> attributes = new HashMap<>();
    public long eventTime;

    public Origin() {}
}

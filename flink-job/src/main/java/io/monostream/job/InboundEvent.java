package io.monostream.job;

import java.util.ArrayList;

/** An ImageEvent as read from Kafka, or the reason it could not be read ({@link #failure} non-null). */
public class InboundEvent {
    public Origin origin = new Origin();
    /** Inline bytes, or filled by the resolve stage from {@link #uri}. */
    public byte[] image;
    public String uri;
    public String contentType;
    /** Task names as written; UNKNOWN for a symbol this reader does not know. */
    public ArrayList<String> tasks = new ArrayList<>();
    public String prompt;
    public Integer maxNewTokens;
    public Failure failure;

    public InboundEvent() {}
}

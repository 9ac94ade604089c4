package io.monostream.job;

import io.monostream.schema.ReasonCode;

/** Why an event or one of its tasks ends as a dead letter. {@code reason} is a ReasonCode name. */
public class Failure {
    public String reason;
    public String message;
    /** source, resolve, request or model */
    public String stage;

    public Failure() {}

    public static Failure of(ReasonCode reason, String stage, String message) {
        Failure f = new Failure();
        f.reason = reason.name();
        f.stage = stage;
        f.message = message == null ? "" : message;
        return f;
    }

    @Override
    public String toString() {
        return reason + " at " + stage + ": " + message;
    }
}

package io.monostream.runtime;

/** A request's failure inside the engine, with a stable reason. One request's failure never fails another. */
public final class EngineException extends RuntimeException {
    private final FailureReason reason;

    public EngineException(FailureReason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public EngineException(FailureReason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public FailureReason reason() {
        return reason;
    }

    /** Whether retrying the same request later can succeed. */
    public boolean transientFailure() {
        return reason == FailureReason.OVERLOADED;
    }
}

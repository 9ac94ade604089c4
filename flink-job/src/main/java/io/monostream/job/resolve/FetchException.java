package io.monostream.job.resolve;

/** A URI that may not be fetched (FETCH_DENIED) or could not be (FETCH_FAILED), or limits exceeded. */
public final class FetchException extends Exception {
    private final String reason;

    public FetchException(String reason, String message) {
        super(message);
        this.reason = reason;
    }

    public FetchException(String reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    /** A ReasonCode name. */
    public String reason() {
        return reason;
    }

    static FetchException denied(String message) {
        return new FetchException("FETCH_DENIED", message);
    }

    static FetchException failed(String message, Throwable cause) {
        return new FetchException("FETCH_FAILED", message, cause);
    }
}

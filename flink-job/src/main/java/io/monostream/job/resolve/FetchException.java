package io.monostream.job.resolve;

import io.monostream.schema.ReasonCode;

/** A URI that may not be fetched (FETCH_DENIED) or could not be (FETCH_FAILED), or a byte limit exceeded. */
public final class FetchException extends Exception {
    private final ReasonCode reason;

    public FetchException(ReasonCode reason, String message) {
        super(message);
        this.reason = reason;
    }

    public FetchException(ReasonCode reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public ReasonCode reason() {
        return reason;
    }

    static FetchException denied(String message) {
        return new FetchException(ReasonCode.FETCH_DENIED, message);
    }

    static FetchException failed(String message, Throwable cause) {
        return new FetchException(ReasonCode.FETCH_FAILED, message, cause);
    }
}

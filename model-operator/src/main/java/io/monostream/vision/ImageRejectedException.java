package io.monostream.vision;

/** An input image that cannot be used, with a stable reason the job turns into a dead-letter code. */
public final class ImageRejectedException extends RuntimeException {
    /** Stable reasons; the names are part of the dead-letter contract. */
    public enum Reason {
        EMPTY_IMAGE,
        IMAGE_TOO_LARGE,
        UNSUPPORTED_FORMAT,
        CORRUPT_IMAGE
    }

    private final Reason reason;

    public ImageRejectedException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public ImageRejectedException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() {
        return reason;
    }
}

package io.monostream.schema;

/** Bytes that are not a record of the expected type in the expected wire format. */
public final class WireFormatException extends RuntimeException {
    public WireFormatException(String message) {
        super(message);
    }

    public WireFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}

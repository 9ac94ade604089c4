package io.monostream.checkpoint;

/**
 * A checkpoint that cannot be used as it is: a missing or truncated file, a bad header, a missing or
 * mis-shaped tensor, an unsupported configuration. The message always names the file or directory.
 */
public final class CheckpointException extends RuntimeException {
    public CheckpointException(String message) {
        super(message);
    }

    public CheckpointException(String message, Throwable cause) {
        super(message, cause);
    }
}

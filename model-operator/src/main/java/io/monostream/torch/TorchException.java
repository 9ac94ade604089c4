package io.monostream.torch;

/**
 * A libtorch call below DJL failed, or the bridge was asked for something libtorch cannot do
 * here (for example CUDA on a CPU-only build).
 *
 * <p>libtorch's C shim reports failure only as a nonzero code; it writes the C++ exception text
 * to stderr, so the message here names the function and points there.
 */
public class TorchException extends RuntimeException {
    public TorchException(String message) {
        super(message);
    }

    public TorchException(String message, Throwable cause) {
        super(message, cause);
    }

    static TorchException failed(String function, int code) {
        return new TorchException(function + " failed with code " + code
                + " (libtorch wrote the C++ exception message to stderr)");
    }
}

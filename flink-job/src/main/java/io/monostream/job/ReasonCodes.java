package io.monostream.job;

import io.monostream.runtime.EngineException;
import io.monostream.runtime.FailureReason;
import io.monostream.schema.ReasonCode;
import io.monostream.vision.ImageRejectedException;

/**
 * The one place where a failure's cause becomes a dead letter's stable {@link ReasonCode}:
 * image rejections (resolve stage and engine alike) and engine failures.
 */
public final class ReasonCodes {
    private ReasonCodes() {}

    public static ReasonCode of(ImageRejectedException.Reason reason) {
        return switch (reason) {
            case EMPTY_IMAGE -> ReasonCode.EMPTY_IMAGE;
            case IMAGE_TOO_LARGE -> ReasonCode.IMAGE_TOO_LARGE;
            case UNSUPPORTED_FORMAT -> ReasonCode.UNSUPPORTED_FORMAT;
            case CORRUPT_IMAGE -> ReasonCode.CORRUPT_IMAGE;
        };
    }

    /**
     * Engine failures. OVERLOADED is retried by the job first (see {@code EngineException#transientFailure});
     * it reaches a dead letter only when the retries are spent, as MODEL_ERROR like the other engine-side causes.
     */
    public static ReasonCode of(FailureReason reason) {
        return switch (reason) {
            case INVALID_REQUEST -> ReasonCode.INVALID_REQUEST;
            case MODEL_TIMEOUT -> ReasonCode.MODEL_TIMEOUT;
            case CANCELLED, OVERLOADED, ENGINE_CLOSED, MODEL_ERROR -> ReasonCode.MODEL_ERROR;
        };
    }

    /** Any cause of a model-stage failure. */
    public static ReasonCode of(Throwable cause) {
        if (cause instanceof ImageRejectedException e) {
            return of(e.reason());
        }
        if (cause instanceof EngineException e) {
            return of(e.reason());
        }
        if (cause instanceof IllegalArgumentException) {
            return ReasonCode.INVALID_REQUEST; // the request builder's own checks
        }
        return ReasonCode.MODEL_ERROR;
    }
}

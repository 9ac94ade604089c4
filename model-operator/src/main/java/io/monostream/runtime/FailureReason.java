package io.monostream.runtime;

/** Why a request failed inside the engine; stable names, mapped to dead-letter reason codes by the job. */
public enum FailureReason {
    /** The request itself is invalid (unknown task, absurd max_new_tokens, prompt too long ...). */
    INVALID_REQUEST,
    /** The deadline passed before the request finished. */
    MODEL_TIMEOUT,
    /** The request was cancelled by its caller. */
    CANCELLED,
    /** The engine refused the request because its queue is full; retrying later may succeed. */
    OVERLOADED,
    /** The engine is closed. */
    ENGINE_CLOSED,
    /** Anything else that went wrong while running the model. */
    MODEL_ERROR
}

package io.monostream.flink;

import io.monostream.runtime.GenerationRequest;
import io.monostream.runtime.GenerationResult;

import java.io.Serializable;

/**
 * Turns a job's own record into an engine request and every way the request can end back into
 * the job's output type. Every method returns a value: failures become records, never exceptions,
 * so a bad request never fails the job.
 */
public interface ModelCallAdapter<IN, OUT> extends Serializable {
    /** May throw (e.g. IllegalArgumentException for an invalid request); that becomes {@link #failure}. */
    GenerationRequest request(IN in);

    OUT result(IN in, GenerationResult result);

    /** {@code cause} is an EngineException, an ImageRejectedException or anything else unexpected. */
    OUT failure(IN in, Throwable cause);

    /** Flink's async timeout fired before the engine answered. */
    OUT timeout(IN in);
}

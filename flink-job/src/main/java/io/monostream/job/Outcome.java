package io.monostream.job;

/**
 * What becomes one output record: an {@link Answer} for (id, task), or a {@link Failure} (a dead
 * letter for one task, or for the whole event when {@link #task} is null).
 */
public class Outcome {
    public Origin origin;
    public String task;
    public Answer answer;
    public Failure failure;
    /** A transient engine failure (overloaded): the async retry strategy tries again. */
    public boolean retryable;

    public Outcome() {}

    public static Outcome answered(Origin origin, String task, Answer answer) {
        Outcome o = new Outcome();
        o.origin = origin;
        o.task = task;
        o.answer = answer;
        return o;
    }

    public static Outcome failed(Origin origin, String task, Failure failure) {
        Outcome o = new Outcome();
        o.origin = origin;
        o.task = task;
        o.failure = failure;
        return o;
    }

    public boolean isDeadLetter() {
        return failure != null;
    }
}

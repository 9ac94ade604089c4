package io.monostream.job;

/** One task of one event, ready for the model: the resolved image bytes and the question. */
public class TaskRequest {
    public Origin origin;
    /** A Task name: CAPTION, DETAILED_CAPTION or OCR. */
    public String task;
    public byte[] image;
    /** The event's prompt override, or null for the task's default question. */
    public String prompt;
    public int maxNewTokens;

    public TaskRequest() {}
}

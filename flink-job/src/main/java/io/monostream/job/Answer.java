package io.monostream.job;

/** The model's text for one task and the figures that came with it. */
public class Answer {
    public String text;
    public String model;
    public String prompt;
    public int promptTokens;
    public int generatedTokens;
    public int imageTiles;
    public double queueMs;
    public double preprocessMs;
    public double prefillMs;
    public double decodeMs;

    public Answer() {}
}

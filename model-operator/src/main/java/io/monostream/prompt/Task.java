package io.monostream.prompt;

/** What a request asks of an image. Each task has a default question; users may override it. */
public enum Task {
    /** One short sentence. */
    CAPTION("Describe this image in one sentence."),
    /** A paragraph with the important details. */
    DETAILED_CAPTION("Describe this image in detail."),
    /** All text in the image, in reading order. */
    OCR("Read all the text in the image, in reading order. Output only the text.");

    private final String defaultQuestion;

    Task(String defaultQuestion) {
        this.defaultQuestion = defaultQuestion;
    }

    public String defaultQuestion() {
        return defaultQuestion;
    }
}

package io.monostream.vision;

/** What an encoded image's header says, read without decoding pixels: format name (lower case) and size. */
public record ImageHeader(String format, int width, int height) {
    /** Pixel count as a long, so a forged header cannot overflow it. */
    public long pixels() {
        return (long) width * height;
    }
}

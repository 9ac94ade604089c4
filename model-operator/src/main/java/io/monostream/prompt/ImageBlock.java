package io.monostream.prompt;

/**
 * The image block that stands for one image in the user turn (spec §5):
 * {@code <img>} + {@code <IMG_CONTEXT>} × (tokens per tile × tiles) + {@code </img>}.
 */
public final class ImageBlock {
    public static final String IMG_START = "<img>";
    public static final String IMG_END = "</img>";
    public static final String IMG_CONTEXT = "<IMG_CONTEXT>";
    /** README-style placeholder some clients put in the question. */
    public static final String PLACEHOLDER = "<image>";

    private ImageBlock() {}

    /**
     * The first of the block's own tokens ({@code <img>}, {@code </img>}, {@code <IMG_CONTEXT>})
     * that {@code question} holds as text, or null. The tokenizer would read them as the special
     * tokens, so a question holding one would break the block: more image positions than the image
     * has rows, or a prefix that ends at the wrong {@code </img>}.
     */
    public static String reservedTokenIn(String question) {
        for (String token : new String[] {IMG_START, IMG_END, IMG_CONTEXT}) {
            if (question.contains(token)) {
                return token;
            }
        }
        return null;
    }

    public static String of(int tokensPerTile, int tiles) {
        int n = Math.multiplyExact(tokensPerTile, tiles);
        StringBuilder sb = new StringBuilder(IMG_START.length() + IMG_END.length() + n * IMG_CONTEXT.length());
        sb.append(IMG_START);
        sb.append(IMG_CONTEXT.repeat(n));
        sb.append(IMG_END);
        return sb.toString();
    }

    /**
     * The user message for a question about one image: the first {@code <image>} placeholder is
     * replaced by the block; without one the block and a newline are prepended (the repo's chat()).
     */
    public static String userMessage(String question, int tokensPerTile, int tiles) {
        String block = of(tokensPerTile, tiles);
        int at = question.indexOf(PLACEHOLDER);
        if (at >= 0) {
            return question.substring(0, at) + block + question.substring(at + PLACEHOLDER.length());
        }
        return block + "\n" + question;
    }
}

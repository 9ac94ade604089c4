package io.monostream.prompt;

import java.util.List;
import java.util.Locale;

/**
 * The internlm2-chat conversation template (spec §5): MPT style, no newline after
 * {@code <|im_end|>}, the model's default system message unless one is given.
 *
 * <pre>{@code
 * String text = ChatTemplate.forName("internlm2-chat").render(List.of(), "<img>...</img>\nWhat is this?");
 * }</pre>
 */
public final class ChatTemplate {
    /** The system message the official checkpoints were fine-tuned with. */
    public static final String INTERNVL_SYSTEM_MESSAGE =
            "你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, 是一个有用无害的人工智能助手。";

    public static final String IM_START = "<|im_start|>";
    public static final String IM_END = "<|im_end|>";

    /** One past exchange of a multi-turn conversation. */
    public record Turn(String user, String assistant) {}

    private final String name;
    private final String systemMessage;

    private ChatTemplate(String name, String systemMessage) {
        this.name = name;
        this.systemMessage = systemMessage;
    }

    /** The template a checkpoint's {@code config.json} names; unknown names are refused, never guessed. */
    public static ChatTemplate forName(String templateName) {
        String normalised = templateName == null ? "" : templateName.trim().toLowerCase(Locale.ROOT);
        if (!normalised.equals("internlm2-chat")) {
            throw new IllegalArgumentException(
                    "unsupported chat template '" + templateName + "': this engine implements internlm2-chat");
        }
        return new ChatTemplate("internlm2-chat", INTERNVL_SYSTEM_MESSAGE);
    }

    public ChatTemplate withSystemMessage(String message) {
        return new ChatTemplate(name, message);
    }

    public String name() {
        return name;
    }

    public String systemMessage() {
        return systemMessage;
    }

    /** The full prompt text, ending with the assistant header the model continues from. */
    public String render(List<Turn> history, String userMessage) {
        StringBuilder sb = new StringBuilder();
        sb.append(IM_START).append("system\n").append(systemMessage).append(IM_END);
        for (Turn turn : history) {
            sb.append(IM_START).append("user\n").append(turn.user()).append(IM_END);
            sb.append(IM_START).append("assistant\n").append(turn.assistant()).append(IM_END);
        }
        sb.append(IM_START).append("user\n").append(userMessage).append(IM_END);
        sb.append(IM_START).append("assistant\n");
        return sb.toString();
    }
}

package io.monostream.runtime;

import ai.djl.ndarray.NDManager;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.ModelConfig;
import io.monostream.model.MonoInternVL;
import io.monostream.prompt.ChatTemplate;
import io.monostream.prompt.ImageBlock;
import io.monostream.tokenizer.InternLM2Tokenizer;
import io.monostream.vision.ImageLimits;
import io.monostream.vision.ImagePreprocessor;
import io.monostream.vision.PreprocessedImage;
import io.monostream.vision.TilingOptions;

import java.util.Arrays;
import java.util.List;

/**
 * One loaded model with its tokenizer, template and image preprocessing: turns a request into a
 * prompt (any thread) and a finished sequence into a result. The scheduler runs the model.
 */
public final class Generator implements AutoCloseable {
    /** Upper bound on max_new_tokens accepted from any caller. */
    public static final int MAX_NEW_TOKENS_LIMIT = 4096;

    private final String modelName;
    private final Checkpoint checkpoint;
    private final InternLM2Tokenizer tokenizer;
    private final MonoInternVL model;
    private final ChatTemplate template;
    private final ImageLimits imageLimits;
    private final int[] stopIds;
    private final int maxSequenceLength;
    private final int imageEndId;

    private Generator(String modelName, Checkpoint checkpoint, InternLM2Tokenizer tokenizer, MonoInternVL model,
            ChatTemplate template, ImageLimits imageLimits, int[] stopIds, int maxSequenceLength) {
        this.imageEndId = tokenizer.tokenId(ImageBlock.IMG_END);
        this.modelName = modelName;
        this.checkpoint = checkpoint;
        this.tokenizer = tokenizer;
        this.model = model;
        this.template = template;
        this.imageLimits = imageLimits;
        this.stopIds = stopIds;
        this.maxSequenceLength = maxSequenceLength;
    }

    /** Loads checkpoint, tokenizer and weights; throws CheckpointException for a bad checkpoint. */
    public static Generator load(EngineOptions options, NDManager parent) {
        io.monostream.model.Precision precision = DeviceAndDtype.precision(options);
        io.monostream.torch.Device device = DeviceAndDtype.device(options);
        Checkpoint checkpoint = Checkpoint.open(options.modelDir());
        InternLM2Tokenizer tokenizer = null;
        try {
            tokenizer = InternLM2Tokenizer.load(options.modelDir());
            ModelConfig config = checkpoint.config();
            ChatTemplate template = ChatTemplate.forName(config.template());
            int imageContext = tokenizer.tokenId(ImageBlock.IMG_CONTEXT);
            tokenizer.tokenId(ImageBlock.IMG_START);
            tokenizer.tokenId(ImageBlock.IMG_END);
            if (tokenizer.vocabSize() > config.llm().vocabSize()) {
                throw new IllegalArgumentException("the tokenizer has " + tokenizer.vocabSize()
                        + " tokens but the model's vocab_size is " + config.llm().vocabSize());
            }
            int[] stops = stopIds(tokenizer, config);
            MonoInternVL model = MonoInternVL.load(checkpoint, parent, imageContext, io.monostream.model.ModelOptions.of(precision, device));
            var llm = config.llm();
            double stretch = llm.ropeScaling() == null ? 1 : llm.ropeScaling().factor();
            int maxLength = (int) Math.min(Integer.MAX_VALUE, (long) (llm.maxPositionEmbeddings() * Math.max(1, stretch)));
            return new Generator(checkpoint.modelName(), checkpoint, tokenizer, model, template, options.imageLimits(), stops, maxLength);
        } catch (RuntimeException e) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            checkpoint.close();
            throw e;
        }
    }

    /** Stop on EOS, {@code <|im_end|>} and {@code <|im_start|>} (spec §5). */
    private static int[] stopIds(InternLM2Tokenizer tokenizer, ModelConfig config) {
        return java.util.stream.IntStream.of(
                        config.llm().eosTokenId(),
                        tokenizer.eosId(),
                        tokenizer.findTokenId(ChatTemplate.IM_END).orElse(-1),
                        tokenizer.findTokenId(ChatTemplate.IM_START).orElse(-1))
                .filter(id -> id >= 0)
                .distinct()
                .toArray();
    }

    public String modelName() {
        return modelName;
    }

    public MonoInternVL model() {
        return model;
    }

    /** The prompt and image of a request, ready for the model. */
    public record Prepared(GenerationRequest request, int[] inputIds, PreprocessedImage image, long preprocessNanos) {}

    /** Decodes and tiles the image and builds the prompt ids (spec §3, §5). */
    public Prepared prepare(GenerationRequest request) {
        long start = System.nanoTime();
        checkLimits(request);
        PreprocessedImage image = null;
        if (request.image() != null) {
            ModelConfig c = checkpoint.config();
            int maxTiles = request.maxTiles() > 0 ? request.maxTiles() : c.maxDynamicPatch();
            TilingOptions tiling = new TilingOptions(c.imageSize(), Math.min(c.minDynamicPatch(), maxTiles), maxTiles,
                    c.useThumbnail(), c.dynamicImageSize());
            image = new ImagePreprocessor(tiling, imageLimits).preprocess(request.image());
        }
        return new Prepared(request, promptIds(request, image), image, System.nanoTime() - start);
    }

    /** Another question on an image already preprocessed for {@code other} (same bytes and tile limit). */
    public Prepared prepareLike(Prepared other, GenerationRequest request) {
        long start = System.nanoTime();
        checkLimits(request);
        return new Prepared(request, promptIds(request, other.image()), other.image(), System.nanoTime() - start);
    }

    private static void checkLimits(GenerationRequest request) {
        if (request.maxNewTokens() > MAX_NEW_TOKENS_LIMIT) {
            throw new EngineException(FailureReason.INVALID_REQUEST,
                    "max_new_tokens " + request.maxNewTokens() + " is above the limit of " + MAX_NEW_TOKENS_LIMIT);
        }
    }

    private int[] promptIds(GenerationRequest request, PreprocessedImage image) {
        String user = request.effectiveQuestion();
        String reserved = ImageBlock.reservedTokenIn(user);
        if (reserved != null) {
            throw new EngineException(FailureReason.INVALID_REQUEST, "the question contains " + reserved
                    + ", a token only the image block may hold");
        }
        if (image != null) {
            user = ImageBlock.userMessage(user, model.tokensPerTile(), image.tileCount());
        }
        int[] ids = tokenizer.encode(template.render(List.of(), user), true);
        if ((long) ids.length + request.maxNewTokens() > maxSequenceLength) {
            throw new EngineException(FailureReason.INVALID_REQUEST, "the prompt has " + ids.length
                    + " tokens; with max_new_tokens " + request.maxNewTokens() + " it exceeds the model's "
                    + maxSequenceLength + "-token context");
        }
        return ids;
    }

    /** Whether a sampled token ends generation (spec §5: EOS, {@code <|im_end|>}, {@code <|im_start|>}). */
    boolean isStop(int id) {
        for (int s : stopIds) {
            if (s == id) {
                return true;
            }
        }
        return false;
    }

    /** The id of {@code </img>}: a prompt split right after it shares the image prefix across tasks. */
    int imageEndId() {
        return imageEndId;
    }

    /** The finished request's result: text decoded without the stop token and with specials skipped. */
    GenerationResult result(Sequence s, long finishedNanos) {
        int[] ids = s.generatedIds();
        int textTokens = "stop_token".equals(s.stopReason) ? ids.length - 1 : ids.length;
        // a model may have more rows than its tokenizer has pieces (padded vocabularies): such ids have no text
        int[] known = Arrays.stream(ids, 0, textTokens).filter(id -> id >= 0 && id < tokenizer.vocabSize()).toArray();
        String text = tokenizer.decode(known, true).strip();
        GenerationRequest request = s.request();
        Generator.Prepared p = s.prepared;
        long queue = Math.max(0, s.prefillStartNanos - s.submittedNanos - p.preprocessNanos());
        Timings timings = new Timings(queue, p.preprocessNanos(), s.prefillNanos, finishedNanos - s.decodeStartNanos);
        return new GenerationResult(request.requestId(), modelName, request.task(), request.effectiveQuestion(), text,
                p.inputIds(), ids, p.image() == null ? 0 : p.image().tileCount(), s.firstLogits,
                s.stopReason == null ? "max_new_tokens" : s.stopReason, timings);
    }

    @Override
    public void close() {
        model.close();
        tokenizer.close();
        checkpoint.close();
    }
}

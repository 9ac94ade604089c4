package io.monostream.runtime;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.ModelConfig;
import io.monostream.model.KvCache;
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
import java.util.function.BooleanSupplier;

/**
 * One loaded model with its tokenizer, template and image preprocessing: turns a request into a
 * prompt, runs prefill and the decode loop, and reports where the time went. Not thread-safe:
 * the {@link Engine} runs it on its own thread.
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

    private Generator(String modelName, Checkpoint checkpoint, InternLM2Tokenizer tokenizer, MonoInternVL model,
            ChatTemplate template, ImageLimits imageLimits, int[] stopIds, int maxSequenceLength) {
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
        DeviceAndDtype.check(options);
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
            MonoInternVL model = MonoInternVL.load(checkpoint, parent, imageContext, io.monostream.model.ModelOptions.of(io.monostream.model.Precision.parse(options.dtype())));
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

    public InternLM2Tokenizer tokenizer() {
        return tokenizer;
    }

    public ChatTemplate template() {
        return template;
    }

    /** The prompt and image of a request, ready for the model. */
    public record Prepared(GenerationRequest request, int[] inputIds, PreprocessedImage image, long preprocessNanos) {}

    /** Decodes and tiles the image and builds the prompt ids (spec §3, §5). */
    public Prepared prepare(GenerationRequest request) {
        long start = System.nanoTime();
        if (request.maxNewTokens() > MAX_NEW_TOKENS_LIMIT) {
            throw new EngineException(FailureReason.INVALID_REQUEST,
                    "max_new_tokens " + request.maxNewTokens() + " is above the limit of " + MAX_NEW_TOKENS_LIMIT);
        }
        PreprocessedImage image = null;
        String user = request.effectiveQuestion();
        if (request.image() != null) {
            ModelConfig c = checkpoint.config();
            int maxTiles = request.maxTiles() > 0 ? request.maxTiles() : c.maxDynamicPatch();
            TilingOptions tiling = new TilingOptions(c.imageSize(), Math.min(c.minDynamicPatch(), maxTiles), maxTiles,
                    c.useThumbnail(), c.dynamicImageSize());
            image = new ImagePreprocessor(tiling, imageLimits).preprocess(request.image());
            user = ImageBlock.userMessage(user, model.tokensPerTile(), image.tileCount());
        }
        int[] ids = tokenizer.encode(template.render(List.of(), user), true);
        if ((long) ids.length + request.maxNewTokens() > maxSequenceLength) {
            throw new EngineException(FailureReason.INVALID_REQUEST, "the prompt has " + ids.length
                    + " tokens; with max_new_tokens " + request.maxNewTokens() + " it exceeds the model's "
                    + maxSequenceLength + "-token context");
        }
        return new Prepared(request, ids, image, System.nanoTime() - start);
    }

    /**
     * Runs one prepared request to completion.
     *
     * @param abort checked between steps; true stops the request (deadline passed or cancelled)
     */
    public GenerationResult generate(Prepared prepared, long queueNanos, BooleanSupplier abort) {
        GenerationRequest request = prepared.request();
        Sampler sampler = new Sampler(request.sampling());
        try (NDManager requestManager = model.manager().newSubManager();
                KvCache cache = model.newCache(requestManager, prepared.inputIds().length + request.maxNewTokens())) {
            long prefillStart = System.nanoTime();
            float[] logits;
            try (NDManager step = requestManager.newSubManager()) {
                NDArray imageRows = null;
                if (prepared.image() != null) {
                    PreprocessedImage image = prepared.image();
                    int s = image.tileSize();
                    NDArray pixels = step.create(image.pixelValues(), new Shape(image.tileCount(), 3, s, s));
                    imageRows = model.embedImages(pixels);
                }
                NDArray hidden = model.forward(step, prepared.inputIds(), imageRows, cache);
                logits = model.logits(hidden.get(hidden.getShape().get(0) - 1)).toFloatArray();
            }
            long prefillNanos = System.nanoTime() - prefillStart;
            float[] firstLogits = logits;
            long decodeStart = System.nanoTime();
            int[] generated = new int[request.maxNewTokens()];
            int count = 0;
            String stopReason = "max_new_tokens";
            while (true) {
                if (abort.getAsBoolean()) {
                    throw new EngineException(FailureReason.MODEL_TIMEOUT, "request " + request.requestId()
                            + " stopped after " + count + " generated tokens: deadline passed or cancelled");
                }
                int next = sampler.next(logits);
                generated[count++] = next;
                if (isStop(next)) {
                    // kept in the ids (as HF generate does), never in the text
                    stopReason = "stop_token";
                    break;
                }
                if (count == request.maxNewTokens()) {
                    break;
                }
                try (NDManager step = requestManager.newSubManager()) {
                    NDArray hidden = model.forward(step, new int[] {next}, null, cache);
                    logits = model.logits(hidden.get(0)).toFloatArray();
                }
            }
            long decodeNanos = System.nanoTime() - decodeStart;
            int[] ids = Arrays.copyOf(generated, count);
            int textTokens = stopReason.equals("stop_token") ? count - 1 : count;
            String text = tokenizer.decode(Arrays.copyOf(ids, textTokens), true).strip();
            return new GenerationResult(request.requestId(), modelName, request.task(), request.effectiveQuestion(), text,
                    prepared.inputIds(), ids, prepared.image() == null ? 0 : prepared.image().tileCount(), firstLogits,
                    stopReason, new Timings(queueNanos, prepared.preprocessNanos(), prefillNanos, decodeNanos));
        }
    }

    private boolean isStop(int id) {
        for (int s : stopIds) {
            if (s == id) {
                return true;
            }
        }
        return false;
    }

    @Override
    public void close() {
        model.close();
        tokenizer.close();
        checkpoint.close();
    }
}

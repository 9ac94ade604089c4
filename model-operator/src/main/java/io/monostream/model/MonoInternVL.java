package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.checkpoint.ModelConfig.LlmConfig;
import io.monostream.checkpoint.ModelConfig;
import io.monostream.torch.CpuDecoder;
import io.monostream.torch.CpuKernels;
import io.monostream.torch.Tensor;

import java.util.ArrayList;
import java.util.List;

/**
 * Mono-InternVL v1: patch embedding and connector feeding an InternLM2 decoder whose layers
 * route each token to a text or a visual FFN expert by modality (spec §1, §4, §6).
 * The forward pass reads top to bottom in the order the data flows.
 */
public final class MonoInternVL implements AutoCloseable {
    private static final String LM = "language_model.model.";

    private final NDManager manager;
    private final ModelConfig config;
    private final int imageContextId;
    private final VisionEmbedding vision;
    private final NDArray tokenEmbeddings;
    private final List<DecoderLayer> layers;
    private final RmsNorm finalNorm;
    private final Projection output;
    private final RotaryEmbedding rope;
    private final Precision precision;
    private final java.util.Map<io.monostream.torch.DType, Long> weightBytes;
    private final MoeImplementation moeImplementation;
    private final CpuDecoder decoder; // null: decode steps run layer by layer

    private MonoInternVL(NDManager manager, ModelConfig config, int imageContextId, VisionEmbedding vision,
            NDArray tokenEmbeddings, List<DecoderLayer> layers, RmsNorm finalNorm, Projection output, RotaryEmbedding rope,
            Precision precision, java.util.Map<io.monostream.torch.DType, Long> weightBytes,
            MoeImplementation moeImplementation) {
        this.moeImplementation = moeImplementation;
        this.decoder = cpuDecoder(manager, config.llm(), tokenEmbeddings, layers, finalNorm, output);
        this.manager = manager;
        this.config = config;
        this.imageContextId = imageContextId;
        this.vision = vision;
        this.tokenEmbeddings = tokenEmbeddings;
        this.layers = layers;
        this.finalNorm = finalNorm;
        this.output = output;
        this.rope = rope;
        this.precision = precision;
        this.weightBytes = weightBytes;
    }

    /**
     * Loads every weight of a checked checkpoint in FP32 into a manager of its own under {@code parent}.
     *
     * @param imageContextId the id of {@code <IMG_CONTEXT>} from the tokenizer files
     */
    public static MonoInternVL load(Checkpoint checkpoint, NDManager parent, int imageContextId) {
        return load(checkpoint, parent, imageContextId, ModelOptions.of(Precision.F32));
    }

    /**
     * Loads every weight of a checked checkpoint in {@code options.precision()} into a manager of
     * its own under {@code parent}. The weights are copies: the checkpoint may be closed afterwards.
     *
     * @param imageContextId the id of {@code <IMG_CONTEXT>} from the tokenizer files
     */
    public static MonoInternVL load(Checkpoint checkpoint, NDManager parent, int imageContextId, ModelOptions options) {
        ModelConfig config = checkpoint.config();
        LlmConfig llm = config.llm();
        Precision precision = options.precision();
        // every array the model makes (weights, KV caches, step scratch) inherits this device
        NDManager manager = parent.newSubManager(options.device().toDjl());
        try {
            WeightLoader weights = new WeightLoader(checkpoint, manager, precision, options.prepackLinears());
            VisionEmbedding vision = new VisionEmbedding(weights, config.imageSize(), config.visionImageSize(),
                    config.patchSize(), config.downsampleRatio(), config.psVersion());
            NDArray embeddings = weights.load(LM + "tok_embeddings.weight");
            List<DecoderLayer> layers = new ArrayList<>(llm.numLayers());
            for (int i = 0; i < llm.numLayers(); i++) {
                String p = LM + "layers." + i + ".";
                layers.add(new DecoderLayer(i,
                        new RmsNorm(weights.load(p + "attention_norm.weight"), llm.rmsNormEps(), precision),
                        new Attention(weights.linear(p + "attention.wqkv.weight", null),
                                weights.linear(p + "attention.wo.weight", null),
                                llm.numHeads(), llm.numKvHeads(), llm.headDim(), options.fusedAttention()),
                        new RmsNorm(weights.load(p + "ffn_norm.weight"), llm.rmsNormEps(), precision),
                        new MultimodalMoe(FeedForward.load(weights, p + "feed_forward"),
                                FeedForward.load(weights, p + "feed_forward_ve"))));
            }
            MoeImplementation moe = MoeImplementation.choose(options.device(), precision, llm.hiddenSize(),
                    llm.intermediateSize());
            manager.attachInternal(java.util.UUID.randomUUID().toString(), moe);
            for (DecoderLayer layer : layers) {
                layer.moe().use(moe, manager);
            }
            RmsNorm norm = new RmsNorm(weights.load(LM + "norm.weight"), llm.rmsNormEps(), precision);
            Projection output = weights.linear("language_model.output.weight", null);
            String scalingType = llm.ropeScaling() == null ? null : llm.ropeScaling().type();
            double factor = llm.ropeScaling() == null ? 1.0 : llm.ropeScaling().factor();
            RotaryEmbedding rope = new RotaryEmbedding(llm.headDim(), llm.ropeTheta(), scalingType, factor,
                    llm.maxPositionEmbeddings());
            return new MonoInternVL(manager, config, imageContextId, vision, embeddings, layers, norm, output, rope,
                    precision, weights.residentBytes(), moe);
        } catch (RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /**
     * The whole decode step in one native call ({@link CpuDecoder}) when the
     * CPU kernels run every piece of it: plain weights without bias (prepacked ones where the CPU
     * kernels do not take prefill, see {@link ModelOptions}), fused attention, CPU; else null.
     */
    private static CpuDecoder cpuDecoder(NDManager manager, LlmConfig llm, NDArray embeddings,
            List<DecoderLayer> layers, RmsNorm finalNorm, Projection output) {
        var kernels = CpuKernels.get();
        if (kernels.isEmpty() || output.kernelWeight() == null || finalNorm.kernelWeight() == null) {
            return null;
        }
        List<CpuDecoder.Layer> weights = new ArrayList<>(layers.size());
        for (DecoderLayer l : layers) {
            FeedForward text = l.moe().text();
            var layer = new CpuDecoder.Layer(l.attentionNorm().kernelWeight(),
                    l.attention().wqkv().kernelWeight(), l.attention().wo().kernelWeight(), l.ffnNorm().kernelWeight(),
                    text.w1().kernelWeight(), text.w3().kernelWeight(), text.w2().kernelWeight());
            if (!l.attention().kernelDecode() || java.util.Arrays.asList(layer.all()).contains(null)) {
                return null;
            }
            weights.add(layer);
        }
        Tensor table = io.monostream.torch.Aten.wrap(embeddings);
        manager.attachInternal(java.util.UUID.randomUUID().toString(), table);
        var dims = new CpuDecoder.Dimensions(llm.hiddenSize(), llm.intermediateSize(),
                llm.numHeads(), llm.numKvHeads(), llm.headDim(), llm.vocabSize(), finalNorm.eps());
        var decoder = CpuDecoder.of(kernels.get(), dims, weights, table, finalNorm.kernelWeight(),
                output.kernelWeight());
        manager.attachInternal(java.util.UUID.randomUUID().toString(), decoder);
        return decoder;
    }

    /**
     * One decode step of these sequences in one native call, when the model has the CPU decode
     * step and every chunk is one text token: runs them, advances their caches and returns the
     * fp32 logits [chunks × vocab], chunk after chunk. Null (nothing done) otherwise: the caller
     * then takes {@link #forward} and {@link #logits}, which give the same values.
     */
    public float[] decode(List<SequenceChunk> chunks) {
        float[] logits = new float[chunks.size() * config.llm().vocabSize()];
        return decode(chunks, logits) ? logits : null;
    }

    /**
     * {@link #decode(List)} writing the logits into {@code into} (at least chunks × vocab long, so a
     * caller can reuse one buffer for every step); false when nothing was done.
     */
    public boolean decode(List<SequenceChunk> chunks, float[] into) {
        if (decoder == null || chunks.isEmpty() || chunks.size() > CpuKernels.MAX_ROWS) {
            return false;
        }
        for (SequenceChunk c : chunks) {
            if (c.ids().length != 1 || c.imageRows() != null || c.ids()[0] == imageContextId) {
                return false;
            }
        }
        List<CpuDecoder.Sequence> sequences = new ArrayList<>(chunks.size());
        for (SequenceChunk c : chunks) {
            KvCache cache = c.cache();
            int past = cache.length();
            float[][] tables = rope.tables(manager, past, 1);
            Tensor[] keys = new Tensor[layers.size()];
            Tensor[] values = new Tensor[layers.size()];
            for (int l = 0; l < keys.length; l++) {
                Tensor[] kv = cache.tensors(l);
                keys[l] = kv[0];
                values[l] = kv[1];
            }
            sequences.add(new CpuDecoder.Sequence(c.ids()[0], past, tables[0], tables[1], keys, values));
        }
        decoder.step(sequences, into);
        for (SequenceChunk c : chunks) {
            c.cache().advance(1);
        }
        return true;
    }

    /**
     * Bytes of the resident weights per element type, as loaded (prepacked linears counted at
     * their plain size): one entry, the model's precision, since no weight is kept twice.
     */
    public java.util.Map<io.monostream.torch.DType, Long> weightBytes() {
        return weightBytes;
    }

    /** How the multimodal MoE runs on this model's device: the fused CUDA kernel or partitioned. */
    public MoeImplementation moeImplementation() {
        return moeImplementation;
    }

    /** The precision of weights, activations and KV cache. */
    public Precision precision() {
        return precision;
    }

    public ModelConfig config() {
        return config;
    }

    public int imageContextId() {
        return imageContextId;
    }

    public int tokensPerTile() {
        return vision.tokensPerTile();
    }

    public int numLayers() {
        return layers.size();
    }

    /** The manager that owns the weights; requests make sub-managers of it. */
    public NDManager manager() {
        return manager;
    }

    /** A new, empty KV cache for one sequence of at most {@code capacity} tokens. */
    public KvCache newCache(NDManager parent, int capacity) {
        LlmConfig llm = config.llm();
        return new KvCache(parent, layers.size(), llm.numKvHeads(), llm.headDim(), capacity, precision.djlType());
    }

    /** KV cache bytes per token of sequence. */
    public long kvBytesPerToken() {
        LlmConfig llm = config.llm();
        return KvCache.bytesPerToken(layers.size(), llm.numKvHeads(), llm.headDim(), precision.djlType());
    }

    /** @param pixels [T, 3, S, S] fp32; @return [T · tokensPerTile, hidden] fp32 */
    public NDArray embedImages(NDArray pixels) {
        return vision.forward(pixels);
    }

    /**
     * Runs new tokens of one or more sequences through the decoder as one batch, after what each
     * sequence's cache holds, and appends them to the caches. Routing follows the per-token
     * modality mask on every forward (spec §6 "Routing"), so chunked prefill and continuation with
     * image tokens are right too.
     *
     * @param scratch owns every intermediate array and the result; close it after the step
     * @return [sum of chunk lengths, hidden] final hidden states of the new rows in chunk order
     *     (before the final norm), fp32 (in BF16 the residual widened exactly)
     */
    public NDArray forward(NDManager scratch, List<SequenceChunk> chunks) {
        int total = 0;
        for (SequenceChunk c : chunks) {
            total += c.ids().length;
        }
        int[] ids = new int[total];
        NDList pieces = new NDList();
        List<Attention.Segment> segments = new ArrayList<>(chunks.size());
        int offset = 0;
        for (SequenceChunk c : chunks) {
            System.arraycopy(c.ids(), 0, ids, offset, c.ids().length);
            pieces.add(embed(scratch, c));
            // cos/sin computed in fp32, then rounded to the model's precision (spec §6)
            NDList cosSin = rope.cosSin(scratch, c.cache().length(), c.ids().length);
            segments.add(new Attention.Segment(offset, c.ids().length, c.cache(),
                    precision.round(cosSin.get(0)), precision.round(cosSin.get(1))));
            offset += c.ids().length;
        }
        NDArray h = pieces.size() == 1 ? pieces.get(0) : NDArrays.concat(pieces, 0);
        ModalityRuns runs = ModalityRuns.of(ids, imageContextId);
        for (DecoderLayer layer : layers) {
            // a layer's intermediates are freed with it, so a long prefill holds one layer's working
            // set at a time instead of every layer's (results attach to their first operand's manager)
            try (NDManager layerScope = scratch.newSubManager()) {
                h.attach(layerScope);
                NDArray next = layer.forward(h, runs, segments);
                next.attach(scratch);
                h = next;
            }
        }
        for (SequenceChunk c : chunks) {
            c.cache().advance(c.ids().length);
        }
        return Precision.widen(h);
    }

    /** One sequence's forward; see {@link #forward(NDManager, List)}. */
    public NDArray forward(NDManager scratch, int[] ids, NDArray imageRows, KvCache cache) {
        return forward(scratch, List.of(new SequenceChunk(ids, imageRows, cache)));
    }

    /** Token embeddings of a chunk with its image rows spliced in at the image-context positions. */
    private NDArray embed(NDManager scratch, SequenceChunk chunk) {
        ModalityRuns runs = ModalityRuns.of(chunk.ids(), imageContextId);
        long given = chunk.imageRows() == null ? 0 : chunk.imageRows().getShape().get(0);
        if (given != runs.visualCount()) {
            throw new IllegalArgumentException("the prompt holds " + runs.visualCount()
                    + " image tokens but " + given + " image embedding rows were given");
        }
        long[] ids = new long[chunk.ids().length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = chunk.ids()[i];
        }
        NDArray h;
        try (Tensor idTensor = Tensor.ofLongs(ids, ids.length);
             Tensor table = io.monostream.torch.Aten.wrap(tokenEmbeddings);
             Tensor onDevice = idTensor.to(table.device());
             Tensor rows = io.monostream.torch.Dispatcher.call("aten::embedding", "", table, onDevice,
                     -1L, false, false)) {
            h = rows.toNDArray(scratch);
        }
        return runs.visualCount() > 0 ? splice(h, precision.round(chunk.imageRows()), runs) : h;
    }

    /** fp32 logits [V] of one hidden row [hidden] (or [rows, V] for [rows, hidden]): fp32(output(RMS(h))) (spec §6). */
    public NDArray logits(NDArray hidden) {
        return Precision.widen(output.apply(finalNorm.forward(hidden)));
    }

    /** Useful FLOPs of one forward over these ids after {@code past} cached tokens (one expert per token). */
    public long flops(int[] ids, int past) {
        ModalityRuns runs = ModalityRuns.of(ids, imageContextId);
        long total = 0;
        for (DecoderLayer layer : layers) {
            total += layer.attention().flops(ids.length, past) + layer.moe().flops(runs);
        }
        return total + 2L * output.out() * output.in();
    }

    /** The MoE of one layer, for tests and benchmarks. */
    public MultimodalMoe moe(int layer) {
        return layers.get(layer).moe();
    }

    private static NDArray splice(NDArray embedded, NDArray imageRows, ModalityRuns runs) {
        NDList pieces = new NDList();
        int imageAt = 0;
        for (ModalityRuns.Run run : runs.runs()) {
            if (run.visual()) {
                pieces.add(imageRows.get(new NDIndex("{}:{}", imageAt, imageAt + run.length())));
                imageAt += run.length();
            } else {
                pieces.add(embedded.get(new NDIndex("{}:{}", run.start(), run.end())));
            }
        }
        return pieces.size() == 1 ? pieces.get(0) : NDArrays.concat(pieces, 0);
    }

    @Override
    public void close() {
        manager.close();
    }
}

package io.monostream.tokenizer;

import ai.djl.sentencepiece.SpProcessor;
import ai.djl.sentencepiece.SpTokenizer;
import io.monostream.checkpoint.CheckpointException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.OptionalInt;

/**
 * The InternLM2 tokenizer as the reference's slow tokenizer behaves (spec §5): added and special
 * tokens are matched first (longest match), each text segment between them is SentencePiece-encoded
 * on its own, BOS is prepended on request and no EOS is added. Decoding drops special tokens on
 * request and joins byte-fallback pieces into UTF-8.
 *
 * <pre>{@code
 * try (InternLM2Tokenizer tok = InternLM2Tokenizer.load(modelDir)) {
 *     int[] ids = tok.encode("<|im_start|>user\nHello<|im_end|>", true);
 *     String text = tok.decode(ids, true);
 * }
 * }</pre>
 *
 * Encoding and decoding are thread-safe once loaded.
 */
public final class InternLM2Tokenizer implements AutoCloseable {
    public static final String MODEL_FILE = "tokenizer.model";

    private final SpTokenizer native_;
    private final SpProcessor processor;
    private final SentencePieceModel model;
    private final AddedVocabulary added;
    private final AddedTokenMatcher matcher;

    private InternLM2Tokenizer(SpTokenizer tokenizer, SentencePieceModel model, AddedVocabulary added) {
        this.native_ = tokenizer;
        this.processor = tokenizer.getProcessor();
        this.model = model;
        this.added = added;
        this.matcher = new AddedTokenMatcher(added.byContent.values());
    }

    /**
     * Loads {@code tokenizer.model} plus {@code added_tokens.json}, {@code tokenizer_config.json} and
     * {@code special_tokens_map.json} (each optional) from {@code modelDir}.
     *
     * @throws CheckpointException naming the file when one is missing or inconsistent
     */
    public static InternLM2Tokenizer load(Path modelDir) {
        Path file = modelDir.resolve(MODEL_FILE);
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new CheckpointException("tokenizer model not found: " + file, e);
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + file + ": " + e.getMessage(), e);
        }
        SentencePieceModel model;
        try {
            model = SentencePieceModel.parse(bytes);
        } catch (IllegalArgumentException e) {
            throw new CheckpointException(file + " is not a SentencePiece model: " + e.getMessage(), e);
        }
        AddedVocabulary added = AddedVocabulary.load(modelDir, model);
        SpTokenizer tokenizer;
        try {
            tokenizer = new SpTokenizer(bytes);
        } catch (RuntimeException e) {
            throw new CheckpointException("SentencePiece could not load " + file + ": " + e.getMessage(), e);
        }
        return new InternLM2Tokenizer(tokenizer, model, added);
    }

    /** Token ids for {@code text}: added/special tokens first, SentencePiece per segment, BOS in front when asked, no EOS. */
    public int[] encode(String text, boolean addBos) {
        IntList ids = new IntList(text.length() / 2 + 2);
        if (addBos) {
            ids.add(bosId());
        }
        for (AddedTokenMatcher.Segment s : matcher.split(text)) {
            if (s.isToken()) {
                ids.add(s.token().id());
            } else {
                ids.addAll(processor.encode(s.text()));
            }
        }
        return ids.toArray();
    }

    /**
     * Text for {@code ids}. Runs of ordinary pieces are SentencePiece-decoded together; added tokens
     * are written as their text, special ones left out when {@code skipSpecialTokens} (a skipped
     * token does not split the run around it, as in the reference).
     *
     * @throws IllegalArgumentException for an id outside the vocabulary
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        StringBuilder out = new StringBuilder();
        int[] run = new int[ids.length];
        int runLength = 0;
        for (int id : ids) {
            checkId(id);
            AddedVocabulary.AddedToken t = added.byId.get(id);
            if (t == null) {
                run[runLength++] = id;
                continue;
            }
            if (skipSpecialTokens && t.special()) {
                continue;
            }
            out.append(model.decode(run, 0, runLength));
            runLength = 0;
            out.append(t.content());
        }
        out.append(model.decode(run, 0, runLength));
        return out.toString();
    }

    /** @throws IllegalArgumentException if {@code token} is neither an added token nor a piece */
    public int tokenId(String token) {
        return findTokenId(token).orElseThrow(() -> new IllegalArgumentException("unknown token: " + token));
    }

    public OptionalInt findTokenId(String token) {
        AddedVocabulary.AddedToken t = added.byContent.get(token);
        if (t != null) {
            return OptionalInt.of(t.id());
        }
        int id = model.pieceToId(token);
        return id < 0 ? OptionalInt.empty() : OptionalInt.of(id);
    }

    public int bosId() {
        if (added.bosId < 0) {
            throw new IllegalStateException("this tokenizer has no BOS token");
        }
        return added.bosId;
    }

    public int eosId() {
        if (added.eosId < 0) {
            throw new IllegalStateException("this tokenizer has no EOS token");
        }
        return added.eosId;
    }

    /** SentencePiece pieces plus added tokens (92553 for Mono-InternVL-2B, spec §2). */
    public int vocabSize() {
        return added.vocabSize;
    }

    /** Whether {@code id} is a special token (dropped by {@code decode(ids, true)}). */
    public boolean isSpecial(int id) {
        AddedVocabulary.AddedToken t = added.byId.get(id);
        return t != null && t.special();
    }

    /** The piece ({@code ▁the}, {@code <0x0A>}) or added token text for {@code id}. */
    public String idToPiece(int id) {
        checkId(id);
        return id < model.size() ? model.piece(id) : added.byId.get(id).content();
    }

    private void checkId(int id) {
        if (id < 0 || id >= added.vocabSize) {
            throw new IllegalArgumentException("token id " + id + " is outside the vocabulary of " + added.vocabSize);
        }
    }

    @Override
    public void close() {
        native_.close();
    }

    /** Growable int array, to avoid boxing every id of a long prompt. */
    private static final class IntList {
        private int[] a;
        private int n;

        IntList(int capacity) {
            a = new int[Math.max(capacity, 8)];
        }

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, n * 2);
            }
            a[n++] = v;
        }

        void addAll(int[] vs) {
            if (n + vs.length > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, n + vs.length));
            }
            System.arraycopy(vs, 0, a, n, vs.length);
            n += vs.length;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}

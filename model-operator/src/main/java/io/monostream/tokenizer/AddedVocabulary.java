package io.monostream.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.monostream.checkpoint.CheckpointException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The tokens matched before SentencePiece runs (spec §5), gathered from a model directory:
 * {@code tokenizer_config.json} ({@code added_tokens_decoder}, bos/eos/unk/pad, additional specials),
 * {@code special_tokens_map.json}, {@code added_tokens.json}, and the SentencePiece model's own
 * user-defined symbols. A token is <em>special</em> when its decoder entry says so or it is one of the
 * named special tokens; special tokens are the ones {@code skipSpecialTokens} drops.
 */
final class AddedVocabulary {
    static final String ADDED_TOKENS = "added_tokens.json";
    static final String TOKENIZER_CONFIG = "tokenizer_config.json";
    static final String SPECIAL_TOKENS_MAP = "special_tokens_map.json";

    /** One matched token; lstrip/rstrip eat whitespace beside it as the reference's AddedToken does. */
    record AddedToken(String content, int id, boolean special, boolean lstrip, boolean rstrip) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    final Map<String, AddedToken> byContent;
    final Map<Integer, AddedToken> byId;
    final int bosId;
    final int eosId;
    final int vocabSize;

    private AddedVocabulary(Map<String, AddedToken> byContent, int bosId, int eosId, int vocabSize) {
        this.byContent = Collections.unmodifiableMap(byContent);
        Map<Integer, AddedToken> ids = new TreeMap<>();
        byContent.values().forEach(t -> ids.put(t.id(), t));
        this.byId = Collections.unmodifiableMap(ids);
        this.bosId = bosId;
        this.eosId = eosId;
        this.vocabSize = vocabSize;
    }

    static AddedVocabulary load(Path dir, SentencePieceModel sp) {
        JsonNode config = readOptional(dir.resolve(TOKENIZER_CONFIG));
        JsonNode specialMap = readOptional(dir.resolve(SPECIAL_TOKENS_MAP));
        JsonNode addedJson = readOptional(dir.resolve(ADDED_TOKENS));
        Builder b = new Builder(dir, sp);

        // 1. user-defined symbols of the SentencePiece model (the chat markers live there)
        for (int id = 0; id < sp.size(); id++) {
            if (sp.type(id) == SentencePieceModel.USER_DEFINED) {
                b.put(sp.piece(id), id, false, false, false, "tokenizer.model");
            }
        }
        // 2. added_tokens_decoder: id -> {content, special, lstrip, rstrip}
        JsonNode decoder = config == null ? null : config.get("added_tokens_decoder");
        if (decoder != null && decoder.isObject()) {
            for (Iterator<Map.Entry<String, JsonNode>> it = decoder.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                int id = parseId(e.getKey(), dir.resolve(TOKENIZER_CONFIG));
                JsonNode t = e.getValue();
                if (!t.hasNonNull("content")) {
                    throw new CheckpointException(dir.resolve(TOKENIZER_CONFIG) + ": added_tokens_decoder entry " + id + " has no content");
                }
                b.put(t.get("content").asText(), id, t.path("special").asBoolean(false), t.path("lstrip").asBoolean(false),
                        t.path("rstrip").asBoolean(false), TOKENIZER_CONFIG);
            }
        }
        // 3. added_tokens.json: content -> id
        if (addedJson != null) {
            if (!addedJson.isObject()) {
                throw new CheckpointException(dir.resolve(ADDED_TOKENS) + " is not a JSON object of token -> id");
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = addedJson.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().canConvertToInt()) {
                    throw new CheckpointException(dir.resolve(ADDED_TOKENS) + ": id of " + e.getKey() + " is not an integer");
                }
                b.put(e.getKey(), e.getValue().asInt(), false, false, false, ADDED_TOKENS);
            }
        }
        // 4. named special tokens: tokenizer_config.json, then special_tokens_map.json; SentencePiece's own as the fallback
        Map<String, String> named = new LinkedHashMap<>();
        List<String> additional = new ArrayList<>();
        for (JsonNode source : new JsonNode[] {specialMap, config}) {
            if (source == null) {
                continue;
            }
            for (String key : new String[] {"bos_token", "eos_token", "unk_token", "pad_token"}) {
                String content = tokenContent(source.get(key));
                if (content != null) {
                    named.put(key, content);
                }
            }
            JsonNode extra = source.get("additional_special_tokens");
            if (extra != null && extra.isArray()) {
                extra.forEach(t -> {
                    String content = tokenContent(t);
                    if (content != null && !additional.contains(content)) {
                        additional.add(content);
                    }
                });
            }
        }
        int[] fallbackIds = {sp.bosId(), sp.eosId(), sp.unkId(), sp.padId()};
        String[] keys = {"bos_token", "eos_token", "unk_token", "pad_token"};
        for (int k = 0; k < keys.length; k++) {
            if (!named.containsKey(keys[k]) && fallbackIds[k] >= 0 && fallbackIds[k] < sp.size()) {
                named.put(keys[k], sp.piece(fallbackIds[k]));
            }
        }
        Set<String> specials = new HashSet<>(named.values());
        specials.addAll(additional);
        for (String content : specials) {
            b.markSpecial(content);
        }
        int bos = named.containsKey("bos_token") ? b.idOf(named.get("bos_token")) : -1;
        int eos = named.containsKey("eos_token") ? b.idOf(named.get("eos_token")) : -1;
        return new AddedVocabulary(b.tokens, bos, eos, b.vocabSize());
    }

    private static String tokenContent(JsonNode node) {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        return node.hasNonNull("content") ? node.get("content").asText() : null;
    }

    private static int parseId(String key, Path file) {
        try {
            return Integer.parseInt(key);
        } catch (NumberFormatException e) {
            throw new CheckpointException(file + ": added_tokens_decoder key " + key + " is not an id", e);
        }
    }

    private static JsonNode readOptional(Path file) {
        if (!Files.exists(file)) {
            return null;
        }
        try {
            return JSON.readTree(Files.readAllBytes(file));
        } catch (IOException e) {
            throw new CheckpointException("cannot parse " + file + ": " + e.getMessage(), e);
        }
    }

    /** Merges the sources, refusing a token that two files give different ids. */
    private static final class Builder {
        final Path dir;
        final SentencePieceModel sp;
        final Map<String, AddedToken> tokens = new LinkedHashMap<>();
        final Map<Integer, String> contentById = new java.util.HashMap<>();

        Builder(Path dir, SentencePieceModel sp) {
            this.dir = dir;
            this.sp = sp;
        }

        void put(String content, int id, boolean special, boolean lstrip, boolean rstrip, String source) {
            if (content.isEmpty() || id < 0) {
                throw new CheckpointException(dir.resolve(source) + ": bad added token '" + content + "' with id " + id);
            }
            if (id < sp.size() && !sp.piece(id).equals(content)) {
                throw new CheckpointException(dir.resolve(source) + ": token " + content + " claims id " + id
                        + ", which tokenizer.model already uses for " + sp.piece(id));
            }
            String owner = contentById.putIfAbsent(id, content);
            if (owner != null && !owner.equals(content)) {
                throw new CheckpointException(dir.resolve(source) + ": id " + id + " is given to both " + owner + " and " + content);
            }
            AddedToken old = tokens.get(content);
            if (old != null && old.id() != id) {
                throw new CheckpointException(dir.resolve(source) + ": token " + content + " has id " + id + " but another file in "
                        + dir + " gives it " + old.id());
            }
            if (old != null) {
                // later sources carry the flags (decoder entries are the detailed ones; added_tokens.json has none)
                special |= old.special();
                lstrip |= old.lstrip();
                rstrip |= old.rstrip();
            }
            tokens.put(content, new AddedToken(content, id, special, lstrip, rstrip));
        }

        void markSpecial(String content) {
            AddedToken t = tokens.get(content);
            if (t == null) {
                int id = sp.pieceToId(content);
                if (id < 0) {
                    throw new CheckpointException("special token " + content + " named in " + dir + " is neither in tokenizer.model nor an added token");
                }
                tokens.put(content, new AddedToken(content, id, true, false, false));
            } else if (!t.special()) {
                tokens.put(content, new AddedToken(content, t.id(), true, t.lstrip(), t.rstrip()));
            }
        }

        int idOf(String content) {
            return tokens.get(content).id();
        }

        /** Ids past tokenizer.model must run on without gaps, as the reference requires. */
        int vocabSize() {
            List<Integer> extra = tokens.values().stream().map(AddedToken::id).filter(id -> id >= sp.size()).sorted().distinct().toList();
            for (int i = 0; i < extra.size(); i++) {
                if (extra.get(i) != sp.size() + i) {
                    throw new CheckpointException("added token ids in " + dir + " are not consecutive after the " + sp.size()
                            + " SentencePiece pieces: expected " + (sp.size() + i) + ", found " + extra.get(i));
                }
            }
            return sp.size() + extra.size();
        }
    }
}

package io.monostream.tokenizer;

import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits text on added/special tokens before SentencePiece sees it (spec §5): scanning left to right,
 * the longest token starting at the earliest position wins, like the reference tokenizer's trie.
 */
final class AddedTokenMatcher {
    /** A piece of the input: either plain text or one matched token. */
    record Segment(String text, AddedVocabulary.AddedToken token) {
        boolean isToken() {
            return token != null;
        }
    }

    /** Candidates by first character, longest first, so the first hit is the longest match. */
    private final Map<Character, List<AddedVocabulary.AddedToken>> byFirstChar = new HashMap<>();

    AddedTokenMatcher(Collection<AddedVocabulary.AddedToken> tokens) {
        for (AddedVocabulary.AddedToken t : tokens) {
            byFirstChar.computeIfAbsent(t.content().charAt(0), c -> new ArrayList<>()).add(t);
        }
        byFirstChar.values().forEach(l -> l.sort(Comparator.comparingInt((AddedVocabulary.AddedToken t) -> t.content().length()).reversed()));
    }

    /** Segments in order; text segments are never empty, and lstrip/rstrip whitespace is already removed. */
    List<Segment> split(String text) {
        List<Segment> raw = new ArrayList<>();
        int textStart = 0;
        int i = 0;
        while (i < text.length()) {
            AddedVocabulary.AddedToken hit = match(text, i);
            if (hit == null) {
                i++;
                continue;
            }
            if (i > textStart) {
                raw.add(new Segment(text.substring(textStart, i), null));
            }
            raw.add(new Segment(hit.content(), hit));
            i += hit.content().length();
            textStart = i;
        }
        if (textStart < text.length()) {
            raw.add(new Segment(text.substring(textStart), null));
        }
        return stripAround(raw);
    }

    private AddedVocabulary.AddedToken match(String text, int at) {
        List<AddedVocabulary.AddedToken> candidates = byFirstChar.get(text.charAt(at));
        if (candidates != null) {
            for (AddedVocabulary.AddedToken t : candidates) {
                if (text.startsWith(t.content(), at)) {
                    return t;
                }
            }
        }
        return null;
    }

    /** A token with rstrip eats the whitespace after it, one with lstrip the whitespace before it. */
    private static List<Segment> stripAround(List<Segment> raw) {
        String[] texts = new String[raw.size()];
        for (int k = 0; k < texts.length; k++) {
            texts[k] = raw.get(k).text();
        }
        for (int k = 0; k < raw.size(); k++) {
            AddedVocabulary.AddedToken t = raw.get(k).token();
            if (t == null) {
                continue;
            }
            if (t.rstrip() && k + 1 < raw.size() && !raw.get(k + 1).isToken()) {
                texts[k + 1] = stripLeading(texts[k + 1]);
            }
            if (t.lstrip() && k > 0 && !raw.get(k - 1).isToken()) {
                texts[k - 1] = stripTrailing(texts[k - 1]);
            }
        }
        List<Segment> out = new ArrayList<>(raw.size());
        for (int k = 0; k < raw.size(); k++) {
            if (raw.get(k).isToken()) {
                out.add(raw.get(k));
            } else if (!texts[k].isEmpty()) {
                out.add(new Segment(texts[k], null));
            }
        }
        return out;
    }

    private static boolean isSpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c);
    }

    private static String stripLeading(String s) {
        int i = 0;
        while (i < s.length() && isSpace(s.charAt(i))) {
            i++;
        }
        return s.substring(i);
    }

    private static String stripTrailing(String s) {
        int i = s.length();
        while (i > 0 && isSpace(s.charAt(i - 1))) {
            i--;
        }
        return s.substring(0, i);
    }
}

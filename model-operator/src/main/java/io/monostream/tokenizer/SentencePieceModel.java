package io.monostream.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * The vocabulary and decoding rule of a SentencePiece {@code tokenizer.model}, read straight from its
 * protobuf. Decoding is done here rather than through the native library because the JNI binding
 * returns its string through modified UTF-8, which mangles characters outside the BMP (emoji arrive
 * as byte-fallback pieces and must come back whole).
 */
final class SentencePieceModel {
    /** SentencePiece piece types (sentencepiece_model.proto). */
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    private static final String SPACE_SYMBOL = "\u2581";
    private static final String REPLACEMENT = "\uFFFD";

    private final String[] pieces;
    private final byte[] types;
    private final Map<String, Integer> idByPiece;
    private final boolean addDummyPrefix;
    private final boolean removeExtraWhitespaces;
    private final int unkId;
    private final int bosId;
    private final int eosId;
    private final int padId;
    private final String unkSurface;

    private SentencePieceModel(String[] pieces, byte[] types, boolean addDummyPrefix, boolean removeExtraWhitespaces,
                               int unkId, int bosId, int eosId, int padId, String unkSurface) {
        this.pieces = pieces;
        this.types = types;
        this.addDummyPrefix = addDummyPrefix;
        this.removeExtraWhitespaces = removeExtraWhitespaces;
        this.unkId = unkId;
        this.bosId = bosId;
        this.eosId = eosId;
        this.padId = padId;
        this.unkSurface = unkSurface;
        this.idByPiece = new HashMap<>(pieces.length * 2);
        for (int i = pieces.length - 1; i >= 0; i--) {
            idByPiece.put(pieces[i], i); // first occurrence wins, as in SentencePiece
        }
    }

    /** Parses a serialized ModelProto; throws IllegalArgumentException if it is not one. */
    static SentencePieceModel parse(byte[] proto) {
        java.util.List<String> pieces = new java.util.ArrayList<>();
        java.util.List<Byte> types = new java.util.ArrayList<>();
        // proto defaults (TrainerSpec / NormalizerSpec)
        boolean[] flags = {true, true}; // add_dummy_prefix, remove_extra_whitespaces
        int[] ids = {0, 1, 2, -1};      // unk, bos, eos, pad
        String[] unkSurface = {" \u2047 "};
        ProtoReader top = new ProtoReader(proto, 0, proto.length);
        while (top.hasMore()) {
            int field = top.readTag();
            if (field == 1 && top.wireType() == 2) {
                ProtoReader p = top.readMessage();
                String piece = "";
                int type = NORMAL;
                while (p.hasMore()) {
                    int f = p.readTag();
                    if (f == 1 && p.wireType() == 2) {
                        piece = p.readString();
                    } else if (f == 3 && p.wireType() == 0) {
                        type = (int) p.readVarint();
                    } else {
                        p.skip();
                    }
                }
                pieces.add(piece);
                types.add((byte) type);
            } else if (field == 2 && top.wireType() == 2) {
                ProtoReader t = top.readMessage();
                while (t.hasMore()) {
                    int f = t.readTag();
                    if (f >= 40 && f <= 43 && t.wireType() == 0) {
                        ids[f - 40] = (int) t.readVarint();
                    } else if (f == 44 && t.wireType() == 2) {
                        unkSurface[0] = t.readString();
                    } else {
                        t.skip();
                    }
                }
            } else if (field == 3 && top.wireType() == 2) {
                ProtoReader n = top.readMessage();
                while (n.hasMore()) {
                    int f = n.readTag();
                    if ((f == 3 || f == 4) && n.wireType() == 0) {
                        flags[f - 3] = n.readVarint() != 0;
                    } else {
                        n.skip();
                    }
                }
            } else {
                top.skip();
            }
        }
        if (pieces.isEmpty()) {
            throw new IllegalArgumentException("no pieces: not a SentencePiece model");
        }
        byte[] t = new byte[types.size()];
        for (int i = 0; i < t.length; i++) {
            t[i] = types.get(i);
        }
        return new SentencePieceModel(pieces.toArray(String[]::new), t, flags[0], flags[1], ids[0], ids[1], ids[2], ids[3], unkSurface[0]);
    }

    int size() {
        return pieces.length;
    }

    String piece(int id) {
        return pieces[id];
    }

    int type(int id) {
        return types[id];
    }

    /** The id of a piece, or -1 (unlike SentencePiece, which answers unk). */
    int pieceToId(String piece) {
        Integer id = idByPiece.get(piece);
        return id == null ? -1 : id;
    }

    int unkId() {
        return unkId;
    }

    int bosId() {
        return bosId;
    }

    int eosId() {
        return eosId;
    }

    int padId() {
        return padId;
    }

    /**
     * SentencePiece's decode of {@code ids[from..to)}: control pieces vanish, runs of byte pieces become
     * UTF-8 (each invalid byte one U+FFFD), the dummy-prefix space of the first word is dropped.
     */
    String decode(int[] ids, int from, int to) {
        StringBuilder text = new StringBuilder();
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        boolean expectBosSpace = true;
        boolean sawBosSpace = false;
        for (int i = from; i < to; i++) {
            int id = ids[i];
            if (types[id] == BYTE) {
                bytes.write(byteValue(id));
                continue;
            }
            appendUtf8(text, bytes.toByteArray());
            bytes.reset();
            if (sawBosSpace || !text.isEmpty()) {
                expectBosSpace = false;
            }
            sawBosSpace = false;
            String surface;
            if (types[id] == CONTROL) {
                surface = "";
            } else if (types[id] == UNKNOWN) {
                surface = unkSurface;
            } else {
                String piece = pieces[id];
                if (expectBosSpace && (addDummyPrefix || removeExtraWhitespaces) && piece.startsWith(SPACE_SYMBOL)) {
                    piece = piece.substring(SPACE_SYMBOL.length());
                    sawBosSpace = !removeExtraWhitespaces;
                }
                surface = piece.replace(SPACE_SYMBOL, " ");
            }
            text.append(surface);
        }
        appendUtf8(text, bytes.toByteArray());
        return text.toString();
    }

    private int byteValue(int id) {
        String p = pieces[id]; // "<0xAB>"
        return Integer.parseInt(p.substring(3, p.length() - 1), 16);
    }

    /** Appends {@code b} as UTF-8, one U+FFFD per byte that does not start a valid sequence (SentencePiece's rule). */
    private static void appendUtf8(StringBuilder out, byte[] b) {
        int i = 0;
        while (i < b.length) {
            int n = validSequenceLength(b, i);
            if (n == 0) {
                out.append(REPLACEMENT);
                i++;
            } else {
                out.append(new String(b, i, n, StandardCharsets.UTF_8));
                i += n;
            }
        }
    }

    /** Length of the well-formed UTF-8 sequence at {@code i} (Unicode table 3-7), or 0 if there is none. */
    private static int validSequenceLength(byte[] b, int i) {
        int c = b[i] & 0xFF;
        if (c < 0x80) {
            return 1;
        }
        int len;
        int lo = 0x80, hi = 0xBF; // allowed range of the second byte
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (i + len > b.length) {
            return 0;
        }
        int second = b[i + 1] & 0xFF;
        if (second < lo || second > hi) {
            return 0;
        }
        for (int k = 2; k < len; k++) {
            int cont = b[i + k] & 0xFF;
            if (cont < 0x80 || cont > 0xBF) {
                return 0;
            }
        }
        return len;
    }

    /** Minimal protobuf wire-format reader: tags, varints, length-delimited fields, skipping the rest. */
    private static final class ProtoReader {
        private final byte[] buf;
        private int pos;
        private final int end;
        private int wireType;

        ProtoReader(byte[] buf, int pos, int end) {
            this.buf = buf;
            this.pos = pos;
            this.end = end;
        }

        boolean hasMore() {
            return pos < end;
        }

        int wireType() {
            return wireType;
        }

        int readTag() {
            long tag = readVarint();
            wireType = (int) (tag & 7);
            return (int) (tag >>> 3);
        }

        long readVarint() {
            long result = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (pos >= end) {
                    throw new IllegalArgumentException("truncated varint at byte " + pos);
                }
                byte b = buf[pos++];
                result |= (long) (b & 0x7F) << shift;
                if (b >= 0) {
                    return result;
                }
            }
            throw new IllegalArgumentException("malformed varint at byte " + pos);
        }

        private int readLength() {
            long len = readVarint();
            if (len < 0 || len > end - pos) {
                throw new IllegalArgumentException("field length " + len + " runs past the end at byte " + pos);
            }
            return (int) len;
        }

        ProtoReader readMessage() {
            int len = readLength();
            ProtoReader r = new ProtoReader(buf, pos, pos + len);
            pos += len;
            return r;
        }

        String readString() {
            int len = readLength();
            String s = new String(buf, pos, len, StandardCharsets.UTF_8);
            pos += len;
            return s;
        }

        void skip() {
            switch (wireType) {
                case 0 -> readVarint();
                case 1 -> pos += 8;
                case 2 -> {
                    int len = readLength(); // not "pos += readLength()": that would add to the pos before the length
                    pos += len;
                }
                case 5 -> pos += 4;
                default -> throw new IllegalArgumentException("unsupported wire type " + wireType + " at byte " + pos);
            }
            if (pos > end) {
                throw new IllegalArgumentException("field runs past the end");
            }
        }
    }
}

package io.monostream.runtime;

import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The images the engine preprocessed last, so requests on the same bytes submitted one after the
 * other (one event's tasks fanned out) share the decoded tiles, and the scheduler can let them
 * share the prefill too. Least recently used first out, bounded both in entries and in the heap
 * their tiles hold (5 tiles of 448 hold 15 MB), so a burst of distinct images does not keep its
 * pixels alive after it has passed. Not thread-safe: the preprocessing thread's alone.
 */
final class RecentImages {
    static final int MAX_ENTRIES = 8;
    static final long MAX_BYTES = 48L << 20;

    private final int maxEntries;
    private final long maxBytes;
    private final LinkedHashMap<Key, Generator.Prepared> entries = new LinkedHashMap<>(16, 0.75f, true);

    RecentImages() {
        this(MAX_ENTRIES, MAX_BYTES);
    }

    RecentImages(int maxEntries, long maxBytes) {
        this.maxEntries = maxEntries;
        this.maxBytes = maxBytes;
    }

    /** The image prepared for these bytes and tile limit, or null. */
    Generator.Prepared get(GenerationRequest r) {
        return entries.get(Key.of(r));
    }

    /** Remembers {@code p} (prepared from {@code r}'s image), dropping the least recently used beyond the bounds. */
    void put(GenerationRequest r, Generator.Prepared p) {
        entries.put(Key.of(r), p);
        Iterator<Map.Entry<Key, Generator.Prepared>> eldest = entries.entrySet().iterator();
        while (entries.size() > 1 && (entries.size() > maxEntries || bytes() > maxBytes)) {
            eldest.next();
            eldest.remove();
        }
    }

    int size() {
        return entries.size();
    }

    /** Heap bytes the entries' tiles hold (pixel values and 8-bit tiles). */
    long bytes() {
        long total = 0;
        for (Generator.Prepared p : entries.values()) {
            total += p.image() == null ? 0 : p.image().heapBytes();
        }
        return total;
    }

    /** Image bytes and tile limit, compared by content. */
    private record Key(byte[] bytes, int maxTiles, int hash) {
        static Key of(GenerationRequest r) {
            return new Key(r.image(), r.maxTiles(), Arrays.hashCode(r.image()) * 31 + r.maxTiles());
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof Key k && k.hash == hash && k.maxTiles == maxTiles && Arrays.equals(k.bytes, bytes);
        }

        @Override
        public int hashCode() {
            return hash;
        }
    }
}

package io.monostream.flink;

import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Reference-counted instances by key: the first {@link #acquire} creates, every acquire returns
 * a lease, the last lease closed closes the instance. Used so that every operator subtask of a
 * TaskManager shares one engine (architecture.md, "The engine").
 */
final class SharedInstances<V extends AutoCloseable> {
    private final Map<String, Entry<V>> entries = new HashMap<>();

    private static final class Entry<V> {
        final V value;
        int users;

        Entry(V value) {
            this.value = value;
        }
    }

    /** A use of a shared instance; closing it twice is harmless. */
    final class Lease implements AutoCloseable {
        private final String key;
        private final V value;
        private boolean closed;

        private Lease(String key, V value) {
            this.key = key;
            this.value = value;
        }

        V get() {
            return value;
        }

        @Override
        public void close() throws Exception {
            synchronized (SharedInstances.this) {
                if (closed) {
                    return;
                }
                closed = true;
            }
            release(key);
        }
    }

    /** Returns a lease on the instance for {@code key}, creating it (under the lock, once) if absent. */
    synchronized Lease acquire(String key, Supplier<V> create) {
        Objects.requireNonNull(key, "key");
        Entry<V> e = entries.get(key);
        if (e == null) {
            e = new Entry<>(Objects.requireNonNull(create.get(), "created instance"));
            entries.put(key, e);
        }
        e.users++;
        return new Lease(key, e.value);
    }

    synchronized int users(String key) {
        Entry<V> e = entries.get(key);
        return e == null ? 0 : e.users;
    }

    private void release(String key) throws Exception {
        V toClose = null;
        synchronized (this) {
            Entry<V> e = entries.get(key);
            if (e != null && --e.users == 0) {
                entries.remove(key);
                toClose = e.value;
            }
        }
        if (toClose != null) {
            toClose.close(); // outside the lock: closing an engine may wait for its threads
        }
    }
}

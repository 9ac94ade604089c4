package io.monostream.torch;

import java.util.function.Supplier;

/**
 * A value computed on first use and then kept: the library lookups and probes of this package
 * run once per JVM, whichever thread asks first, and never while another is running.
 */
final class Once<T> implements Supplier<T> {
    private final Supplier<T> compute;
    private volatile T value;

    Once(Supplier<T> compute) {
        this.compute = compute;
    }

    @Override
    public T get() {
        T v = value;
        if (v == null) {
            synchronized (this) {
                v = value;
                if (v == null) {
                    v = java.util.Objects.requireNonNull(compute.get(), "a Once value must not be null");
                    value = v;
                }
            }
        }
        return v;
    }
}

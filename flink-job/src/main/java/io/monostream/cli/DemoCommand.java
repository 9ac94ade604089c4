package io.monostream.cli;

/** `demo` (in progress). */
public final class DemoCommand {
    private DemoCommand() {}

    public static int run(String[] args) {
        System.err.println("demo: not finished on this branch yet");
        return 1;
    }
}

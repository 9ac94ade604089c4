package io.monostream.cli;

/** Placeholder on branch `stream` only (the base's Main named a class that does not exist); main's Main wins on merge. */
public final class Main {
    public static void main(String[] args) {
        System.exit(args.length > 0 && args[0].equals("demo") ? DemoCommand.run(java.util.Arrays.copyOfRange(args, 1, args.length)) : 2);
    }
}

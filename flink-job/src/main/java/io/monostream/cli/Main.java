package io.monostream.cli;

public final class Main {
    public static void main(String[] args) {
        io.monostream.model.TorchSmoke.main(args);
    }
}

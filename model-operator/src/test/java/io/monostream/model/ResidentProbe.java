package io.monostream.model;

import ai.djl.ndarray.NDManager;
import io.monostream.checkpoint.Checkpoint;
import io.monostream.torch.TorchThreads;
import java.nio.file.Path;

/** Child-JVM main: loads the checkpoint in args[0] at precision args[1], prints "resident-anon-delta N". */
public final class ResidentProbe {
    private ResidentProbe() {}

    public static void main(String[] args) {
        TorchThreads.configure(1);
        try (Checkpoint checkpoint = Checkpoint.open(Path.of(args[0])); NDManager root = NDManager.newBaseManager("PyTorch")) {
            System.gc();
            long before = io.monostream.runtime.ProcessMemory.residentAnonymous();
            try (MonoInternVL model = MonoInternVL.load(checkpoint, root, checkpoint.config().llm().vocabSize() - 1,
                    ModelOptions.of(Precision.parse(args[1])))) {
                System.gc();
                System.out.println("resident-anon-delta " + (io.monostream.runtime.ProcessMemory.residentAnonymous() - before));
                System.out.println("parameters " + checkpoint.parameterCount());
            }
        }
    }
}

package io.monostream.cli;

import io.monostream.checkpoint.CheckpointException;
import io.monostream.prompt.Task;
import io.monostream.runtime.EngineException;
import io.monostream.vision.ImageRejectedException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.NoSuchFileException;
import java.util.Arrays;

/**
 * The one jar's entry point: {@code java -jar monostream.jar COMMAND [flags]}. Exit code 0 on
 * success, 2 for a usage error, a missing file, a bad checkpoint or a rejected input (one line on
 * stderr), 1 for anything unexpected.
 */
public final class Main {
    static final String USAGE = """
            usage: java -jar monostream.jar COMMAND [flags]   (COMMAND --help for its flags)

            model commands:
              caption           short caption of one image
              detailed-caption  detailed caption of one image
              ocr               all text of one image, in reading order
              inspect           greedy decoding with ids and logits as JSON, for checking against other implementations
              bench-moe         multimodal-MoE benchmark: partitioned vs compute-both-and-mask
              random-checkpoint write a random-weight checkpoint (Mono-InternVL-2B shape by default) for load tests
              bench             engine benchmark: BF16 vs FP32, matmul efficiency, decode vs bandwidth, batching, shared prefix

            streaming commands:
              run               the Flink job (flink run, or a local MiniCluster)
              demo              local demo: embedded Kafka broker, local Flink, the bundled small model
              produce           send image files to a topic as ImageEvents (inline or by file: reference)
              tail              print results and dead letters of topics (read_committed)
              bench-pipeline    throughput of the whole pipeline against the bare engine
            """;

    private Main() {}

    public static void main(String[] args) {
        // captions and OCR text are UTF-8 whatever the locale (a C locale would print '?')
        System.setOut(new java.io.PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true,
                java.nio.charset.StandardCharsets.UTF_8));
        System.exit(run(args));
    }

    public static int run(String[] args) {
        if (args.length == 0 || args[0].equals("--help") || args[0].equals("help")) {
            System.out.print(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        String command = args[0];
        String[] rest = Arrays.copyOfRange(args, 1, args.length);
        try {
            return switch (command) {
                case "caption" -> GenerateCommand.run(command, Task.CAPTION, rest);
                case "detailed-caption" -> GenerateCommand.run(command, Task.DETAILED_CAPTION, rest);
                case "ocr" -> GenerateCommand.run(command, Task.OCR, rest);
                case "inspect" -> InspectCommand.run(rest);
                case "bench-moe" -> BenchMoeCommand.run(rest);
                case "bench" -> BenchCommand.run(rest);
                case "random-checkpoint" -> RandomCheckpointCommand.run(rest);
                case "run" -> RunCommand.run(rest);
                case "demo" -> DemoCommand.run(rest);
                case "produce" -> ProduceCommand.run(rest);
                case "tail" -> TailCommand.run(rest);
                case "bench-pipeline" -> BenchPipelineCommand.run(rest);
                default -> throw new UsageException("unknown command '" + command + "' (try --help)");
            };
        } catch (UsageException | CheckpointException | ImageRejectedException | EngineException e) {
            System.err.println("error: " + oneLine(e.getMessage()));
            return 2;
        } catch (NoSuchFileException e) {
            System.err.println("error: no such file: " + e.getFile());
            return 2;
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + oneLine(e.getMessage()));
            return 2;
        } catch (IOException | UncheckedIOException e) {
            System.err.println("error: " + oneLine(String.valueOf(e.getMessage())));
            return 2;
        } catch (RuntimeException e) {
            e.printStackTrace();
            return 1;
        }
    }

    private static String oneLine(String message) {
        return message == null ? "(no message)" : message.replace('\n', ' ');
    }
}

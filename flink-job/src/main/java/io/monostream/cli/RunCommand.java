package io.monostream.cli;

import io.monostream.job.CommandLineOptions;
import io.monostream.job.MonostreamPipeline;

import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.util.Set;

/** {@code run}: the streaming job, for {@code flink run} on a cluster or locally in this JVM. */
public final class RunCommand {
    private RunCommand() {}

    public static int run(String[] args) {
        CommandLineOptions.Parsed p;
        try {
            p = CommandLineOptions.parse(args, Set.of(), Set.of());
        } catch (IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            return 2;
        }
        if (p.help()) {
            System.out.println("usage: monostream run [--flag value ...]\n");
            System.out.print(CommandLineOptions.help());
            return 0;
        }
        if (!p.positional().isEmpty()) {
            System.err.println("error: unexpected arguments " + p.positional());
            return 2;
        }
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(p.conf());
        MonostreamPipeline.build(env, p.conf());
        try {
            env.execute("monostream");
        } catch (Exception e) {
            System.err.println("error: the job failed: " + e);
            return 1;
        }
        return 0;
    }
}

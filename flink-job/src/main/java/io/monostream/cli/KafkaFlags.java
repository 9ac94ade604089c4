package io.monostream.cli;

import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * Splits {@code --kafka.<property> value} (or {@code --kafka.<property>=value}) off a command's
 * arguments: those go to the Kafka client unchanged (security, tuning), the rest to {@link Flags}.
 */
record KafkaFlags(Properties properties, String[] rest) {
    static final String PREFIX = "--kafka.";

    static KafkaFlags split(String command, String[] args) {
        Properties props = new Properties();
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith(PREFIX)) {
                rest.add(a);
                continue;
            }
            String kv = a.substring(PREFIX.length());
            int eq = kv.indexOf('=');
            if (eq > 0) {
                props.setProperty(kv.substring(0, eq), kv.substring(eq + 1));
            } else if (i + 1 < args.length) {
                props.setProperty(kv, args[++i]);
            } else {
                throw new UsageException(command + ": " + a + " needs a value");
            }
        }
        return new KafkaFlags(props, rest.toArray(String[]::new));
    }
}

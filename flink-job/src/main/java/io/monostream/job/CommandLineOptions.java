package io.monostream.job;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.Configuration;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code --key value} flags to a Flink {@link Configuration} of {@link MonostreamOptions}, plus
 * {@code kafka.*} pass-through keys. Unknown flags are errors (a typo must not silently run defaults).
 */
public final class CommandLineOptions {
    /** What was parsed: the configuration and the arguments that were not flags. */
    public record Parsed(Configuration conf, List<String> positional, boolean help) {}

    private CommandLineOptions() {}

    /**
     * @param extraFlags flags the calling command owns besides the options (e.g. "by-reference"), no "--"
     * @param booleanFlags those extra flags that take no value
     */
    public static Parsed parse(String[] args, Set<String> extraFlags, Set<String> booleanFlags) {
        Map<String, String> known = new HashMap<>();
        for (ConfigOption<?> o : MonostreamOptions.all()) {
            known.put(o.key(), o.key());
        }
        known.put("model", MonostreamOptions.MODEL_PATH.key());
        Map<String, String> values = new HashMap<>();
        List<String> positional = new ArrayList<>();
        boolean help = false;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                help = true;
                continue;
            }
            if (!a.startsWith("--")) {
                positional.add(a);
                continue;
            }
            String name = a.substring(2);
            String value = null;
            int eq = name.indexOf('=');
            if (eq > 0) {
                value = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            boolean isBoolean = booleanFlags.contains(name);
            String key;
            if (known.containsKey(name)) {
                key = known.get(name);
            } else if (name.startsWith(MonostreamOptions.KAFKA_PROPERTY_PREFIX) || extraFlags.contains(name)) {
                key = name;
            } else {
                throw new IllegalArgumentException("unknown flag --" + name + " (see --help)");
            }
            if (value == null) {
                if (isBoolean) {
                    value = "true";
                } else if (i + 1 < args.length) {
                    value = args[++i];
                } else {
                    throw new IllegalArgumentException("flag --" + name + " needs a value");
                }
            }
            values.put(key, value);
        }
        Configuration conf = Configuration.fromMap(values);
        for (ConfigOption<?> o : MonostreamOptions.all()) {
            if (values.containsKey(o.key())) {
                conf.get(o); // parse now: a bad value fails here with the flag's name, not deep in the job
            }
        }
        return new Parsed(conf, positional, help);
    }

    /** The option table as Markdown (the README's configuration table; a test keeps the two equal). */
    public static String markdownTable() {
        StringBuilder sb = new StringBuilder("| flag / key | default | what |\n|---|---|---|\n");
        for (ConfigOption<?> o : MonostreamOptions.all()) {
            sb.append("| `--").append(o.key()).append("` | ").append(shownDefault(o).isEmpty() ? "(none)" : "`" + shownDefault(o) + "`")
                    .append(" | ").append(new org.apache.flink.configuration.description.HtmlFormatter().format(o.description())
                            .replace("|", "\\|")).append(" |\n");
        }
        sb.append("| `--kafka.<property>` | | passed to every Kafka client (source, sinks), e.g. `--kafka.security.protocol SASL_SSL` |\n");
        return sb.toString();
    }

    private static String shownDefault(ConfigOption<?> o) {
        Object def = o.hasDefaultValue() ? o.defaultValue() : null;
        return def instanceof List<?> l ? String.join(";", l.stream().map(String::valueOf).toList())
                : def instanceof java.time.Duration d ? org.apache.flink.util.TimeUtils.formatWithHighestUnit(d) : String.valueOf(def);
    }

    /** The option table for --help: flag, default, description. */
    public static String help() {
        StringBuilder sb = new StringBuilder("Options (--flag value; defaults in brackets):\n");
        for (ConfigOption<?> o : MonostreamOptions.all()) {
            Object def = o.hasDefaultValue() ? o.defaultValue() : null;
            String shown = def instanceof List<?> l ? String.join(";", l.stream().map(String::valueOf).toList()) : String.valueOf(def);
            sb.append(String.format("  --%-32s [%s]%n      %s%n", o.key(), shown, new org.apache.flink.configuration.description.HtmlFormatter().format(o.description())));
        }
        sb.append("  --kafka.<property> <value>\n      Passed to every Kafka client, e.g. --kafka.security.protocol SASL_SSL.\n");
        return sb.toString();
    }
}

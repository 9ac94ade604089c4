package io.monostream.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code --name value} and {@code --switch} arguments of one command. Unknown flags, missing
 * values and malformed numbers are {@link UsageException}s, never silently ignored.
 */
public final class Flags {
    private final String command;
    private final Map<String, String> values = new LinkedHashMap<>();
    private final List<String> positional = new ArrayList<>();

    private Flags(String command) {
        this.command = command;
    }

    /**
     * @param valued flags that take a value (without the leading dashes)
     * @param switches flags without a value
     */
    public static Flags parse(String command, String[] args, Set<String> valued, Set<String> switches) {
        Flags flags = new Flags(command);
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--") || arg.equals("--")) {
                flags.positional.add(arg);
                continue;
            }
            String name = arg.substring(2);
            String inline = null;
            int eq = name.indexOf('=');
            if (eq >= 0) {
                inline = name.substring(eq + 1);
                name = name.substring(0, eq);
            }
            if (switches.contains(name) && inline == null) {
                flags.values.put(name, "true");
            } else if (valued.contains(name)) {
                String value = inline;
                if (value == null) {
                    if (i + 1 >= args.length) {
                        throw new UsageException(command + ": --" + name + " needs a value");
                    }
                    value = args[++i];
                }
                flags.values.put(name, value);
            } else {
                throw new UsageException(command + ": unknown flag --" + name + " (see '" + command + " --help')");
            }
        }
        return flags;
    }

    public boolean has(String name) {
        return values.containsKey(name);
    }

    public String get(String name, String fallback) {
        return values.getOrDefault(name, fallback);
    }

    public String required(String name) {
        String v = values.get(name);
        if (v == null) {
            throw new UsageException(command + ": --" + name + " is required");
        }
        return v;
    }

    public int getInt(String name, int fallback) {
        String v = values.get(name);
        if (v == null) {
            return fallback;
        }
        try {
            return Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be an integer, got '" + v + "'");
        }
    }

    public long getLong(String name, long fallback) {
        String v = values.get(name);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v.trim());
        } catch (NumberFormatException e) {
            throw new UsageException(command + ": --" + name + " must be an integer, got '" + v + "'");
        }
    }

    /** A path that must exist. */
    public Path existingPath(String name) {
        Path p = Path.of(required(name));
        if (!Files.exists(p)) {
            throw new UsageException(command + ": --" + name + " " + p + " does not exist");
        }
        return p;
    }

    /** A path that must be an existing regular file (a directory would fail later without naming the flag). */
    public Path existingFile(String name) {
        Path p = existingPath(name);
        if (!Files.isRegularFile(p)) {
            throw new UsageException(command + ": --" + name + " " + p + " is not a file");
        }
        return p;
    }

    public List<String> positional() {
        return positional;
    }
}

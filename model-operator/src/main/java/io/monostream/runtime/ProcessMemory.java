package io.monostream.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * This process's memory as Linux reports it in /proc/self/status, in bytes (-1 where unavailable).
 * Anonymous memory is what libtorch allocates; a memory-mapped checkpoint is file-backed and not in it.
 */
public final class ProcessMemory {
    private ProcessMemory() {}

    public static long resident() {
        return field("VmRSS:");
    }

    public static long peakResident() {
        return field("VmHWM:");
    }

    /**
     * Starts the peak ({@link #peakResident()}) afresh from the current resident memory (writes 5 to
     * /proc/self/clear_refs, Linux 4.0+); whether it could.
     */
    public static boolean resetPeak() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
            return true;
        } catch (IOException | SecurityException e) {
            return false;
        }
    }

    public static long residentAnonymous() {
        return field("RssAnon:");
    }

    private static long field(String name) {
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/self/status"));
            for (String line : lines) {
                if (line.startsWith(name)) {
                    return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }
}

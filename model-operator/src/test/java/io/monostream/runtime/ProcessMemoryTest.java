package io.monostream.runtime;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class ProcessMemoryTest {
    private static final long MB = 1 << 20;

    @Test
    void thePeakStartsAfreshFromTheCurrentResidentMemory() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment touched = arena.allocate(256 * MB);
            touched.fill((byte) 1);
        } // 256 MB go back to the OS (a single allocation of that size is its own mapping)
        long peakAfterFree = ProcessMemory.peakResident();
        long resident = ProcessMemory.resident();
        assertTrue(peakAfterFree - resident > 200 * MB,
                "the peak should still count the freed 256 MB: peak " + (peakAfterFree >> 20) + " MB, resident " + (resident >> 20) + " MB");

        assertTrue(ProcessMemory.resetPeak(), "/proc/self/clear_refs is not writable");
        long peak = ProcessMemory.peakResident();
        assertTrue(peak < peakAfterFree - 200 * MB,
                "the peak was not reset: " + (peak >> 20) + " MB, " + (peakAfterFree >> 20) + " MB before");
        assertTrue(peak >= ProcessMemory.resident() - 16 * MB, "the reset peak is below resident memory");
    }
}

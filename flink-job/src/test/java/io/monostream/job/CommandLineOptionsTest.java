package io.monostream.job;

import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.*;

/** Pins the flag syntax: options by key, kafka.* pass-through, unknown flags refused, --help lists all. */
class CommandLineOptionsTest {
    @Test
    void flagsBecomeOptionsAndKafkaPropertiesPassThrough() {
        var p = CommandLineOptions.parse(new String[] {"--bootstrap-servers", "k:9093", "--async.timeout", "30 s",
                "--fetch.allowed-roots", "/a;/b", "--kafka.security.protocol=SASL_SSL", "--model", "/m", "x"}, Set.of(), Set.of());
        assertEquals("k:9093", p.conf().get(MonostreamOptions.BOOTSTRAP_SERVERS));
        assertEquals(Duration.ofSeconds(30), p.conf().get(MonostreamOptions.ASYNC_TIMEOUT));
        assertEquals(List.of("/a", "/b"), p.conf().get(MonostreamOptions.FETCH_ALLOWED_ROOTS));
        assertEquals("/m", p.conf().get(MonostreamOptions.MODEL_PATH));
        assertEquals("SASL_SSL", MonostreamOptions.kafkaProperties(p.conf()).getProperty("security.protocol"));
        assertEquals(List.of("x"), p.positional());
        assertEquals("localhost:9092", CommandLineOptions.parse(new String[0], Set.of(), Set.of()).conf()
                .get(MonostreamOptions.BOOTSTRAP_SERVERS));
    }

    @Test
    void unknownFlagsAndBadValuesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> CommandLineOptions.parse(new String[] {"--bootstrap-server", "x"}, Set.of(), Set.of()));
        assertThrows(IllegalArgumentException.class, () -> CommandLineOptions.parse(new String[] {"--async.capacity", "many"}, Set.of(), Set.of()));
    }

    @Test
    void helpListsEveryOptionWithItsDefault() {
        String help = CommandLineOptions.help();
        for (var o : MonostreamOptions.all()) {
            assertTrue(help.contains("--" + o.key()), o.key());
        }
        assertTrue(help.contains("[localhost:9092]"));
    }
}

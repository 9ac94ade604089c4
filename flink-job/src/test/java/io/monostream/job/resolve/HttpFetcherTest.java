package io.monostream.job.resolve;

import io.monostream.schema.ReasonCode;

import com.sun.net.httpserver.HttpServer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/** http(s) fetching: allow-list, private addresses, byte cap, timeout, no redirects; against a loopback server. */
class HttpFetcherTest {
    private static final byte[] IMAGE = "pretend these are PNG bytes".getBytes();

    private HttpServer server;
    private ExecutorService threads;
    private final AtomicInteger hits = new AtomicInteger();
    private final CountDownLatch release = new CountDownLatch(1);
    private String hostPort;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/image.png", x -> {
            hits.incrementAndGet();
            x.sendResponseHeaders(200, IMAGE.length);
            try (OutputStream out = x.getResponseBody()) {
                out.write(IMAGE);
            }
        });
        server.createContext("/big", x -> {
            x.sendResponseHeaders(200, 5000);
            try (OutputStream out = x.getResponseBody()) {
                out.write(new byte[5000]);
            }
        });
        server.createContext("/endless", x -> { // chunked: no Content-Length to refuse early
            x.sendResponseHeaders(200, 0);
            try (OutputStream out = x.getResponseBody()) {
                for (int i = 0; i < 100; i++) {
                    out.write(new byte[1000]);
                }
            } catch (IOException ignored) {
                // the client hung up at its cap
            }
        });
        server.createContext("/slow", x -> {
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            x.sendResponseHeaders(200, IMAGE.length);
            try (OutputStream out = x.getResponseBody()) {
                out.write(IMAGE);
            } catch (IOException ignored) {
                // the client timed out and left
            }
        });
        server.createContext("/redirect", x -> {
            x.getResponseHeaders().add("Location", "/image.png");
            x.sendResponseHeaders(302, -1);
            x.close();
        });
        threads = Executors.newFixedThreadPool(4);
        server.setExecutor(threads);
        server.start();
        hostPort = "127.0.0.1:" + server.getAddress().getPort();
    }

    @AfterEach
    void stop() {
        release.countDown();
        server.stop(0);
        threads.shutdownNow();
    }

    private HttpFetcher fetcher(boolean allowPrivate, Duration readTimeout) {
        return new HttpFetcher(List.of(hostPort), allowPrivate, Duration.ofSeconds(2), readTimeout);
    }

    private URI uri(String path) {
        return URI.create("http://" + hostPort + path);
    }

    private static ReasonCode refused(HttpFetcher f, URI uri, long cap) {
        return assertThrows(FetchException.class, () -> f.fetch(uri, cap)).reason();
    }

    @Test
    void anAllowListedHostIsFetched() throws Exception {
        try (HttpFetcher f = fetcher(true, Duration.ofSeconds(5))) {
            assertArrayEquals(IMAGE, f.fetch(uri("/image.png"), 1000));
            assertEquals(1, hits.get());
        }
    }

    @Test
    void bodiesOverTheCapAreRefusedByHeaderAndWhileReading() {
        try (HttpFetcher f = fetcher(true, Duration.ofSeconds(5))) {
            assertEquals(ReasonCode.IMAGE_TOO_LARGE, refused(f, uri("/big"), 4999));
            assertEquals(ReasonCode.IMAGE_TOO_LARGE, refused(f, uri("/endless"), 10_000));
            assertDoesNotThrow(() -> assertEquals(5000, f.fetch(uri("/big"), 5000).length));
        }
    }

    @Test
    void aSlowServerTimesOut() {
        try (HttpFetcher f = fetcher(true, Duration.ofMillis(300))) {
            long start = System.nanoTime();
            FetchException e = assertThrows(FetchException.class, () -> f.fetch(uri("/slow"), 1000));
            assertEquals(ReasonCode.FETCH_FAILED, e.reason());
            assertTrue(e.getMessage().contains("timed out"), e.getMessage());
            assertTrue(System.nanoTime() - start < TimeUnit.SECONDS.toNanos(5), "gave up near the timeout");
        }
    }

    @Test
    void redirectsAreNotFollowed() {
        try (HttpFetcher f = fetcher(true, Duration.ofSeconds(5))) {
            FetchException e = assertThrows(FetchException.class, () -> f.fetch(uri("/redirect"), 1000));
            assertEquals(ReasonCode.FETCH_FAILED, e.reason());
            assertTrue(e.getMessage().contains("302"), e.getMessage());
            assertEquals(0, hits.get(), "the redirect target was never requested");
        }
    }

    @Test
    void hostsOffTheAllowListAreDeniedWithoutAConnection() {
        try (HttpFetcher f = fetcher(true, Duration.ofSeconds(5))) {
            int port = server.getAddress().getPort();
            assertEquals(ReasonCode.FETCH_DENIED, refused(f, URI.create("http://localhost:" + port + "/image.png"), 1000));
            assertEquals(ReasonCode.FETCH_DENIED, refused(f, URI.create("http://127.0.0.1:" + (port + 1) + "/image.png"), 1000));
            assertEquals(ReasonCode.FETCH_DENIED, refused(f, URI.create("http://user:pw@" + hostPort + "/image.png"), 1000));
            assertEquals(0, hits.get());
        }
    }

    @Test
    void privateAddressesAreDeniedUnlessAllowed() {
        try (HttpFetcher f = fetcher(false, Duration.ofSeconds(5))) {
            FetchException e = assertThrows(FetchException.class, () -> f.fetch(uri("/image.png"), 1000));
            assertEquals(ReasonCode.FETCH_DENIED, e.reason());
            assertTrue(e.getMessage().contains("non-public address"), e.getMessage());
            assertEquals(0, hits.get());
        }
    }

    @Test
    void privateRangesAreRecognised() throws Exception {
        for (String a : List.of("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0",
                "100.64.0.1", "::1", "fd00::1", "fe80::1")) {
            assertTrue(HttpFetcher.isPrivate(InetAddress.getByName(a)), a);
        }
        for (String a : List.of("8.8.8.8", "1.1.1.1", "100.128.0.1", "2001:4860:4860::8888")) {
            assertFalse(HttpFetcher.isPrivate(InetAddress.getByName(a)), a);
        }
    }
}

package io.monostream.job;

import io.monostream.job.resolve.FetchException;
import io.monostream.job.resolve.FileFetcher;
import io.monostream.job.resolve.HttpFetcher;
import io.monostream.schema.ReasonCode;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.streaming.api.functions.async.ResultFuture;
import org.apache.flink.streaming.api.functions.async.RichAsyncFunction;

import java.net.URI;
import java.net.URISyntaxException;
import java.util.Collections;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;

/**
 * Claim-check resolution off the task thread: an event that names its image by URI gets the bytes
 * ({@code file:} under the allowed roots, {@code http(s):} to allow-listed hosts) or a
 * {@code FETCH_DENIED}/{@code FETCH_FAILED} failure, on a small pool of fetch threads, so a slow
 * server never stalls the task thread or checkpoint barriers. Inline events pass straight through.
 * The output is a new event; the input Flink holds for its snapshot is never modified.
 */
public class FetchStage extends RichAsyncFunction<InboundEvent, InboundEvent> {
    private final ResolveSettings settings;
    private transient FileFetcher files;
    private transient HttpFetcher http;
    private transient ExecutorService pool;

    public FetchStage(ResolveSettings settings) {
        this.settings = settings;
    }

    @Override
    public void open(OpenContext ctx) {
        files = new FileFetcher(settings.allowedRoots());
        http = new HttpFetcher(settings.allowedHosts(), settings.allowPrivateAddresses(),
                settings.connectTimeout(), settings.readTimeout());
        pool = Executors.newFixedThreadPool(settings.fetchThreads(),
                Thread.ofPlatform().name("monostream-fetch-", 0).daemon().factory());
    }

    @Override
    public void close() {
        if (pool != null) {
            pool.shutdownNow();
        }
        if (http != null) {
            http.close();
        }
    }

    @Override
    public void asyncInvoke(InboundEvent in, ResultFuture<InboundEvent> result) {
        if (in.failure != null || in.uri == null) {
            result.complete(Collections.singletonList(in));
            return;
        }
        try {
            pool.execute(() -> result.complete(Collections.singletonList(fetched(in))));
        } catch (RejectedExecutionException e) {
            result.complete(Collections.singletonList(failed(in, ReasonCode.FETCH_FAILED, "the fetch pool is closed")));
        }
    }

    @Override
    public void timeout(InboundEvent in, ResultFuture<InboundEvent> result) {
        result.complete(Collections.singletonList(failed(in, ReasonCode.FETCH_FAILED,
                "fetching " + in.uri + " took longer than the fetch timeout")));
    }

    /** Total time one fetch may take: connecting plus reading, with room for the pool's queue. */
    public static long timeoutMillis(ResolveSettings settings) {
        return 2 * (settings.connectTimeout().toMillis() + settings.readTimeout().toMillis());
    }

    private InboundEvent fetched(InboundEvent in) {
        try {
            InboundEvent out = copy(in);
            out.image = fetch(in.uri);
            out.uri = null;
            return out;
        } catch (FetchException e) {
            return failed(in, e.reason(), e.getMessage());
        } catch (RuntimeException e) {
            return failed(in, ReasonCode.FETCH_FAILED, "fetching " + in.uri + " failed: " + e.getMessage());
        }
    }

    private byte[] fetch(String text) throws FetchException {
        URI uri;
        try {
            uri = new URI(text);
        } catch (URISyntaxException e) {
            throw new FetchException(ReasonCode.FETCH_DENIED, "not a URI: " + e.getMessage());
        }
        String scheme = uri.getScheme() == null ? "" : uri.getScheme().toLowerCase(Locale.ROOT);
        long cap = Math.min(settings.maxBytes(), settings.fetchMaxBytes());
        return switch (scheme) {
            case "file" -> files.fetch(uri, cap);
            case "http", "https" -> http.fetch(uri, cap);
            default -> throw new FetchException(ReasonCode.FETCH_DENIED, "scheme '" + scheme + "' is not allowed");
        };
    }

    private static InboundEvent failed(InboundEvent in, ReasonCode reason, String message) {
        InboundEvent out = copy(in);
        out.failure = Failure.of(reason, "resolve", message);
        return out;
    }

    private static InboundEvent copy(InboundEvent in) {
        InboundEvent out = new InboundEvent();
        out.origin = in.origin;
        out.image = in.image;
        out.uri = in.uri;
        out.contentType = in.contentType;
        out.tasks = new java.util.ArrayList<>(in.tasks);
        out.prompt = in.prompt;
        out.maxNewTokens = in.maxNewTokens;
        out.failure = in.failure;
        return out;
    }
}

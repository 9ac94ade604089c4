package io.monostream.job.resolve;

import io.monostream.schema.ReasonCode;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.URI;
import java.net.UnknownHostException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Fetches {@code http(s):} URIs from allow-listed hosts only, with connect and whole-response
 * timeouts and a byte cap, no redirects (a redirect could leave the allow-list). A host that
 * resolves to a loopback, private, link-local or wildcard address is refused unless private
 * addresses are allowed explicitly (server-side request forgery).
 */
public final class HttpFetcher implements AutoCloseable {
    private final Set<String> allowedHosts;
    private final boolean allowPrivate;
    private final Duration readTimeout;
    private final HttpClient client;

    public HttpFetcher(List<String> allowedHosts, boolean allowPrivate, Duration connectTimeout, Duration readTimeout) {
        this.allowedHosts = allowedHosts.stream().filter(h -> !h.isBlank())
                .map(h -> h.trim().toLowerCase(Locale.ROOT)).collect(Collectors.toUnmodifiableSet());
        this.allowPrivate = allowPrivate;
        this.readTimeout = readTimeout;
        this.client = HttpClient.newBuilder().connectTimeout(connectTimeout)
                .followRedirects(HttpClient.Redirect.NEVER).build();
    }

    public byte[] fetch(URI uri, long maxBytes) throws FetchException {
        String host = uri.getHost();
        if (host == null) {
            throw FetchException.denied("no host in " + uri);
        }
        host = host.toLowerCase(Locale.ROOT);
        String hostPort = uri.getPort() < 0 ? host : host + ":" + uri.getPort();
        if (!allowedHosts.contains(host) && !allowedHosts.contains(hostPort)) {
            throw FetchException.denied("host not on the allow-list: " + host);
        }
        if (uri.getUserInfo() != null) {
            throw FetchException.denied("credentials in URIs are refused");
        }
        try {
            for (InetAddress a : InetAddress.getAllByName(host)) {
                if (!allowPrivate && isPrivate(a)) {
                    throw FetchException.denied(host + " resolves to a non-public address " + a.getHostAddress());
                }
            }
        } catch (UnknownHostException e) {
            throw FetchException.failed("unknown host " + host, e);
        }
        HttpRequest req = HttpRequest.newBuilder(uri).timeout(readTimeout).GET().build();
        try {
            HttpResponse<InputStream> resp = client.send(req, HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream body = resp.body()) {
                if (resp.statusCode() != 200) {
                    throw FetchException.failed("HTTP " + resp.statusCode() + " from " + uri, null);
                }
                long declared = resp.headers().firstValueAsLong("content-length").orElse(-1);
                if (declared > maxBytes) {
                    throw new FetchException(ReasonCode.IMAGE_TOO_LARGE, declared + " bytes > limit " + maxBytes);
                }
                return CappedRead.readAtMost(body, maxBytes);
            }
        } catch (HttpTimeoutException e) {
            throw FetchException.failed("timed out fetching " + uri, e);
        } catch (IOException e) {
            throw FetchException.failed("cannot fetch " + uri + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw FetchException.failed("interrupted fetching " + uri, e);
        }
    }

    static boolean isPrivate(InetAddress a) {
        if (a.isAnyLocalAddress() || a.isLoopbackAddress() || a.isLinkLocalAddress() || a.isSiteLocalAddress()
                || a.isMulticastAddress()) {
            return true;
        }
        byte[] b = a.getAddress();
        if (b.length == 16 && (b[0] & 0xfe) == 0xfc) {
            return true; // IPv6 unique local fc00::/7
        }
        return b.length == 4 && (b[0] & 0xff) == 100 && (b[1] & 0xc0) == 64; // carrier-grade NAT 100.64/10
    }

    @Override
    public void close() {
        client.close();
    }
}

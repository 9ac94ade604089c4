package io.monostream.job;

import org.apache.flink.configuration.Configuration;

import java.io.Serializable;
import java.time.Duration;
import java.util.ArrayList;


/** What the resolve stage needs from the options, in a serialisable record. */
public record ResolveSettings(
        ArrayList<String> allowedRoots,
        ArrayList<String> allowedHosts,
        boolean allowPrivateAddresses,
        Duration connectTimeout,
        Duration readTimeout,
        long fetchMaxBytes,
        long maxBytes,
        long maxPixels,
        int defaultMaxNewTokens,
        int maxNewTokensLimit,
        int fetchThreads) implements Serializable {

    public static ResolveSettings from(Configuration c) {
        return new ResolveSettings(
                new ArrayList<>(c.get(MonostreamOptions.FETCH_ALLOWED_ROOTS)),
                new ArrayList<>(c.get(MonostreamOptions.FETCH_ALLOWED_HOSTS)),
                c.get(MonostreamOptions.FETCH_ALLOW_PRIVATE),
                c.get(MonostreamOptions.FETCH_CONNECT_TIMEOUT),
                c.get(MonostreamOptions.FETCH_READ_TIMEOUT),
                c.get(MonostreamOptions.FETCH_MAX_BYTES),
                c.get(MonostreamOptions.LIMIT_MAX_BYTES),
                c.get(MonostreamOptions.LIMIT_MAX_PIXELS),
                c.get(MonostreamOptions.MAX_NEW_TOKENS_DEFAULT),
                c.get(MonostreamOptions.MAX_NEW_TOKENS_LIMIT),
                c.get(MonostreamOptions.FETCH_THREADS));
    }

}

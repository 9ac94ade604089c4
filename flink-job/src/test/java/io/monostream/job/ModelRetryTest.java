package io.monostream.job;

import io.monostream.flink.OverloadedThenAnswering;
import io.monostream.schema.ReasonCode;

import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.testutils.MiniClusterResourceConfiguration;
import org.apache.flink.streaming.api.datastream.AsyncDataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.test.junit5.MiniClusterExtension;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * OVERLOADED is retried by the job's async retry strategy; spent retries end as one dead letter.
 * Flink stops retrying once the input has ended, so the input here stays open a while after the
 * requests under test: a last, invalid marker request waits in a map before it is sent.
 */
class ModelRetryTest {
    @RegisterExtension
    static final MiniClusterExtension FLINK = new MiniClusterExtension(new MiniClusterResourceConfiguration.Builder()
            .setNumberTaskManagers(1).setNumberSlotsPerTaskManager(1).build());

    private static final String MARKER = "marker";

    /** Holds the marker back for a second, so the input does not end while retries are due. */
    static final class HoldMarker implements MapFunction<TaskRequest, TaskRequest> {
        @Override
        public TaskRequest map(TaskRequest r) throws InterruptedException {
            if (MARKER.equals(r.origin.id)) {
                Thread.sleep(1000);
            }
            return r;
        }
    }

    private static TaskRequest request(String id) {
        TaskRequest r = new TaskRequest();
        r.origin = new Origin();
        r.origin.id = id;
        r.task = "CAPTION";
        r.image = new byte[] {1};
        r.maxNewTokens = 4;
        return r;
    }

    private static List<Outcome> run(int refusals, int retries, String... ids) throws Exception {
        Configuration conf = Configuration.fromMap(Map.of(MonostreamOptions.ASYNC_RETRIES.key(), String.valueOf(retries),
                MonostreamOptions.ASYNC_RETRY_DELAY.key(), "10 ms"));
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setParallelism(1);
        List<TaskRequest> in = new ArrayList<>();
        for (String id : ids) {
            in.add(request(id));
        }
        TaskRequest marker = request(MARKER);
        marker.maxNewTokens = 0; // invalid: fails at once, never retried
        in.add(marker);
        List<Outcome> out = new ArrayList<>();
        AsyncDataStream.unorderedWaitWithRetry(env.fromData(in).map(new HoldMarker()),
                        new OverloadedThenAnswering<>(new TaskRequestCall(Duration.ofSeconds(30), 0), refusals),
                        30, TimeUnit.SECONDS, 4, MonostreamPipeline.retryStrategy(conf))
                .returns(Outcome.class)
                .disableChaining() // the map's wait must not block the async operator's thread
                .executeAndCollect().forEachRemaining(o -> {
                    if (!MARKER.equals(o.origin.id)) {
                        out.add(o);
                    }
                });
        return out;
    }

    @Test
    void overloadedRequestsAreRetriedUntilAnswered() throws Exception {
        List<Outcome> out = run(2, 3, "r1", "r2");
        assertEquals(2, out.size());
        for (Outcome o : out) {
            assertNull(o.failure, () -> "failed: " + o.failure);
            assertEquals("answer after 3 submissions", o.answer.text);
            assertEquals(3, OverloadedThenAnswering.SUBMISSIONS.get(o.origin.id + "/CAPTION").get());
        }
    }

    @Test
    void spentRetriesEndAsOneDeadLetter() throws Exception {
        List<Outcome> out = run(10, 2, "s1");
        assertEquals(1, out.size());
        assertEquals(ReasonCode.MODEL_ERROR.name(), out.getFirst().failure.reason);
        assertEquals(3, OverloadedThenAnswering.SUBMISSIONS.get("s1/CAPTION").get(), "the first try and 2 retries");
    }
}

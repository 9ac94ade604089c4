package io.monostream.schema;

import org.apache.avro.Schema;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Earlier released versions of each record schema, kept as resources under
 * {@code io/monostream/schema/history/<Name>.v<N>.avsc}, so a reader can still resolve
 * messages that an older producer wrote. When a schema changes, copy its previous text there.
 */
final class SchemaHistory {
    private static final int MAX_VERSIONS = 100;

    private SchemaHistory() {}

    static List<Schema> olderVersions(String fullName) {
        String simple = fullName.substring(fullName.lastIndexOf('.') + 1);
        List<Schema> out = new ArrayList<>();
        for (int v = 1; v <= MAX_VERSIONS; v++) {
            String resource = "history/" + simple + ".v" + v + ".avsc";
            try (InputStream in = SchemaHistory.class.getResourceAsStream(resource)) {
                if (in == null) {
                    break;
                }
                out.add(new Schema.Parser().parse(in));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read schema history " + resource, e);
            }
        }
        return out;
    }
}

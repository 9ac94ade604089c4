package io.monostream.testing;

import com.fasterxml.jackson.databind.JsonNode;

/** Reading the reference's golden JSON (tools/reference): id lists and logits. */
public final class Goldens {
    private Goldens() {}

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    public static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) array.get(i).asDouble();
        }
        return out;
    }
}

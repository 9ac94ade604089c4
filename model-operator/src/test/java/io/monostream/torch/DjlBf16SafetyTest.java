package io.monostream.torch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import io.monostream.testing.ChildJvm;
import org.junit.jupiter.api.Test;

/**
 * Pins which DJL calls the model may make on BF16 arrays (the list in {@link Aten}), each run in
 * a child JVM because the unsafe ones abort the process.
 */
class DjlBf16SafetyTest {
    /** The DJL calls the model's BF16 path relies on. */
    static final String[] USED_BY_THE_MODEL = {"getShape", "getDataType", "toTypeF32", "add", "mul", "mulScalar",
            "divScalar", "neg", "reshape", "transpose", "expandDims", "broadcast", "getRange", "getRow", "getColumns",
            "getWithManager", "setRange", "concat", "duplicate", "square", "mean", "sqrt", "gelu", "layerNorm",
            "conv2d", "embedding", "attachDetachClose", "setName"};

    @Test
    void callsTheModelMakesOnBf16ArraysAreSafe() throws Exception {
        ChildJvm.Result r = ChildJvm.run(DjlBf16Probe.class, USED_BY_THE_MODEL);
        assertEquals(0, r.exitCode(), r.output());
    }

    @Test
    void softmaxOnBf16AbortsTheJvm() throws Exception {
        // why attention's softmax runs inside SDPA or on an fp32 copy
        assertNotEquals(0, ChildJvm.run(DjlBf16Probe.class, "softmax").exitCode());
    }

    @Test
    void creatingBf16ThroughDjlAbortsTheJvm() throws Exception {
        // why BF16 arrays are made with Aten.zeros / Aten.cast
        assertNotEquals(0, ChildJvm.run(DjlBf16Probe.class, "zerosBf16").exitCode());
    }
}

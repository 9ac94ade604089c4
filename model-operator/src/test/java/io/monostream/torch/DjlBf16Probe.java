package io.monostream.torch;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.BiConsumer;

/**
 * Runs one DJL call on a BF16 {@code PtNDArray} in this JVM, then checks the result through the
 * bridge. Meant to be started in a child JVM ({@link DjlBf16SafetyTest}): DJL's BF16 path can
 * abort the process, so the parent learns the answer from the exit code.
 */
public final class DjlBf16Probe {

    /** Calls on BF16 arrays, by name. Each gets a manager and a [4, 6] BF16 array of 0..23. */
    static final Map<String, BiConsumer<NDManager, NDArray>> CALLS = new LinkedHashMap<>();

    static {
        CALLS.put("getShape", (m, a) -> a.getShape());
        CALLS.put("getDataType", (m, a) -> a.getDataType());
        CALLS.put("toString", (m, a) -> a.toString());
        CALLS.put("toFloatArray", (m, a) -> a.toFloatArray());
        CALLS.put("toTypeF32", (m, a) -> a.toType(DataType.FLOAT32, false));
        CALLS.put("add", (m, a) -> a.add(a));
        CALLS.put("addi", (m, a) -> a.addi(a));
        CALLS.put("sub", (m, a) -> a.sub(a));
        CALLS.put("mul", (m, a) -> a.mul(a));
        CALLS.put("mulScalar", (m, a) -> a.mul(2f));
        CALLS.put("divScalar", (m, a) -> a.div(2f));
        CALLS.put("neg", (m, a) -> a.neg());
        CALLS.put("reshape", (m, a) -> a.reshape(6, 4));
        CALLS.put("transpose", (m, a) -> a.transpose(1, 0));
        CALLS.put("expandDims", (m, a) -> a.expandDims(1));
        CALLS.put("broadcast", (m, a) -> a.expandDims(0).broadcast(3, 4, 6));
        CALLS.put("getRange", (m, a) -> a.get(new NDIndex("1:3")));
        CALLS.put("getRow", (m, a) -> a.get(2));
        CALLS.put("getColumns", (m, a) -> a.get(new NDIndex(":, 2:4")));
        CALLS.put("getWithManager", (m, a) -> a.get(m, new NDIndex(":2, :")));
        CALLS.put("setRange", (m, a) -> a.set(new NDIndex("1:3, :"), a.get(new NDIndex("0:2, :")).duplicate()));
        CALLS.put("concat", (m, a) -> NDArrays.concat(new NDList(a, a), 0));
        CALLS.put("stack", (m, a) -> NDArrays.stack(new NDList(a, a), 0));
        CALLS.put("duplicate", (m, a) -> a.duplicate());
        CALLS.put("softmax", (m, a) -> a.softmax(-1));
        CALLS.put("square", (m, a) -> a.square());
        CALLS.put("mean", (m, a) -> a.mean(new int[] {-1}, true));
        CALLS.put("sigmoid", (m, a) -> ai.djl.nn.Activation.sigmoid(a));
        CALLS.put("matMul", (m, a) -> a.matMul(a.transpose(1, 0)));
        CALLS.put("embedding", (m, a) -> {
            NDArray ids = m.create(new int[] {3, 0, 1});
            a.getNDArrayInternal().embedding(ids, a, SparseFormat.DENSE).singletonOrThrow();
        });
        CALLS.put("attachDetachClose", (m, a) -> {
            NDManager sub = m.newSubManager();
            NDArray b = a.add(a);
            b.attach(sub);
            sub.close();
        });
        CALLS.put("zerosBf16", (m, a) -> m.zeros(new Shape(2, 2), DataType.BFLOAT16));
        CALLS.put("swish", (m, a) -> ai.djl.nn.Activation.swish(a, 1f));
        CALLS.put("gelu", (m, a) -> ai.djl.nn.Activation.gelu(a));
        CALLS.put("linear", (m, a) -> ai.djl.nn.core.Linear.linear(a, a).singletonOrThrow());
        CALLS.put("layerNorm", (m, a) -> ai.djl.nn.norm.LayerNorm.layerNorm(a, new Shape(6),
                a.get(0), a.get(1), 1e-5f).singletonOrThrow());
        CALLS.put("conv2d", (m, a) -> ai.djl.nn.convolutional.Conv2d.conv2d(a.reshape(1, 1, 4, 6),
                a.get(new NDIndex(":2, :2")).reshape(1, 1, 2, 2), null, new Shape(2, 2), new Shape(0, 0),
                new Shape(1, 1), 1).singletonOrThrow());
        CALLS.put("sqrt", (m, a) -> a.sqrt());
        CALLS.put("gt", (m, a) -> a.gt(a));
        CALLS.put("batchMatMul", (m, a) -> a.expandDims(0).batchMatMul(a.transpose(1, 0).expandDims(0)));
        CALLS.put("setName", (m, a) -> a.setName("w"));
    }

    private DjlBf16Probe() {
    }

    /** Exit 0 when the call returned; any abort of the process is the answer "unsafe". */
    public static void main(String[] args) {
        TorchThreads.configure(1);
        try (NDManager manager = NDManager.newBaseManager("PyTorch")) {
            for (String name : args) {
                float[] values = new float[24];
                for (int i = 0; i < values.length; i++) {
                    values[i] = i;
                }
                try (Tensor f = Tensor.of(values, 4, 6); Tensor b = f.to(DType.BF16)) {
                    NDArray a = b.toNDArray(manager);
                    CALLS.get(name).accept(manager, a);
                }
                System.out.println("survived " + name);
            }
        }
    }
}

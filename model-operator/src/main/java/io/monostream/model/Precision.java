package io.monostream.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.monostream.torch.Aten;
import io.monostream.torch.DType;

/**
 * The element type the model keeps its weights, activations, residuals and KV cache in
 * (spec §6 "Numerics"). With BF16, linears accumulate in fp32 inside oneDNN, RMSNorm and the
 * rotary tables are computed in fp32 and rounded to BF16, softmax runs in fp32 inside SDPA, and
 * logits are fp32. Arrays crossing the public API (image rows in, hidden states and logits out)
 * are fp32 in both precisions.
 */
public enum Precision {
    F32(DType.F32, DataType.FLOAT32),
    BF16(DType.BF16, DataType.BFLOAT16);

    private final DType dtype;
    private final DataType djlType;

    Precision(DType dtype, DataType djlType) {
        this.dtype = dtype;
        this.djlType = djlType;
    }

    /** {@code f32}/{@code fp32}/{@code float32} or {@code bf16}/{@code bfloat16}; FP16 is refused. */
    public static Precision parse(String name) {
        return switch (name.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "fp32", "float32" -> F32;
            case "bf16", "bfloat16" -> BF16;
            case "f16", "fp16", "float16" -> throw new IllegalArgumentException(
                    "dtype f16 is refused: Mono-InternVL overflows to NaN in float16; use f32 or bf16");
            default -> throw new IllegalArgumentException("unknown dtype '" + name + "' (f32 or bf16)");
        };
    }

    public DType dtype() {
        return dtype;
    }

    /**
     * DJL's name for the type, for Java-side arithmetic such as byte counts only: DJL's native
     * code must never be handed {@code BFLOAT16} (it aborts the JVM; see {@link Aten}).
     */
    public DataType djlType() {
        return djlType;
    }

    public int byteSize() {
        return dtype.byteSize();
    }

    /** {@code x} rounded to this precision (x itself when it already is). */
    NDArray round(NDArray x) {
        return this == F32 && x.getDataType() == DataType.FLOAT32 ? x : Aten.cast(x, dtype);
    }

    /** {@code x} widened to fp32 (exact from BF16; DJL's cast is safe in this direction). */
    static NDArray widen(NDArray x) {
        return x.getDataType() == DataType.FLOAT32 ? x : x.toType(DataType.FLOAT32, false);
    }
}

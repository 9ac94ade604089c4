package io.monostream.checkpoint;

/** The tensor element types this engine reads from safetensors (spec §2: weights are BF16). */
public enum DType {
    F32(4),
    BF16(2),
    F16(2);

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The type for a safetensors {@code dtype} string.
     *
     * @throws IllegalArgumentException for any other type (F64, I64, U8, ...); callers add the tensor and file
     */
    public static DType fromSafetensors(String name) {
        return switch (name) {
            case "F32" -> F32;
            case "BF16" -> BF16;
            case "F16" -> F16;
            default -> throw new IllegalArgumentException("unsupported dtype " + name + " (supported: F32, BF16, F16)");
        };
    }
}

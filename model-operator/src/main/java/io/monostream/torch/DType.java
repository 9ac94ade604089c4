package io.monostream.torch;

/**
 * Element types the bridge can hand to libtorch. The numeric codes are asked from libtorch at
 * load time ({@code aoti_torch_dtype_*()}), never hard-coded, because the C shim does not make
 * them part of its ABI.
 */
public enum DType {
    F32(4, "float32"),
    BF16(2, "bfloat16"),
    F16(2, "float16"),
    F64(8, "float64"),
    I64(8, "int64"),
    I32(4, "int32"),
    I16(2, "int16"),
    I8(1, "int8"),
    U8(1, "uint8"),
    BOOL(1, "bool");

    private final int byteSize;
    private final String torchName;

    DType(int byteSize, String torchName) {
        this.byteSize = byteSize;
        this.torchName = torchName;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The suffix of libtorch's {@code aoti_torch_dtype_<name>} getter. */
    String torchName() {
        return torchName;
    }

    /** libtorch's code for this type (c10::ScalarType), also how it is boxed on the dispatcher stack. */
    public int code() {
        return TorchBridge.get().dtypeCode(this);
    }

    /** The type with libtorch code {@code code}. */
    public static DType fromCode(int code) {
        return TorchBridge.get().dtypeOf(code);
    }

    /** Parses {@code f32}, {@code bf16}, ... (case-insensitive). */
    public static DType parse(String name) {
        for (DType t : values()) {
            if (t.name().equalsIgnoreCase(name) || t.torchName.equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "'");
    }
}

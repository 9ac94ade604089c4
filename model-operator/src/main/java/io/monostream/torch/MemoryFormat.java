package io.monostream.torch;

/** c10::MemoryFormat values for ops such as {@code aten::contiguous}; codes asked from libtorch. */
public enum MemoryFormat {
    CONTIGUOUS("contiguous_format"),
    PRESERVE("preserve_format"),
    CHANNELS_LAST("channels_last"),
    CHANNELS_LAST_3D("channels_last_3d");

    private final String torchName;

    MemoryFormat(String torchName) {
        this.torchName = torchName;
    }

    String torchName() {
        return torchName;
    }

    /** libtorch's code, as boxed on the dispatcher stack. */
    public int code() {
        return TorchBridge.get().memoryFormatCode(this);
    }
}

package io.monostream.runtime;

/** Refuses device and dtype choices this engine cannot honour, with a message that says why. */
final class DeviceAndDtype {
    private DeviceAndDtype() {}

    static void check(EngineOptions options) {
        switch (options.dtype()) {
            case "f32", "fp32", "float32" -> {}
            case "f16", "fp16", "float16" -> throw new IllegalArgumentException(
                    "dtype f16 is refused: Mono-InternVL overflows to NaN in float16; use f32 or bf16");
            case "bf16", "bfloat16" -> {}
            default -> throw new IllegalArgumentException("unknown dtype '" + options.dtype() + "' (f32 or bf16)");
        }
        String device = options.device();
        if (device.equals("cpu")) {
            return;
        }
        if (device.equals("cuda") || device.matches("cuda:\\d+")) {
            throw new IllegalArgumentException("device " + device
                    + " requested but this build runs on the CPU only (DJL's CPU libtorch); use --device cpu");
        }
        throw new IllegalArgumentException("unknown device '" + device + "' (cpu, cuda or cuda:N)");
    }
}

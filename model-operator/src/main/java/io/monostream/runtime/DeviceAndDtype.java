package io.monostream.runtime;

import io.monostream.model.Precision;
import io.monostream.torch.Device;

/**
 * Turns the options' device and dtype into the model's, refusing choices this engine cannot
 * honour with one line that says why (FP16; CUDA asked for with DJL's CPU libtorch or no GPU).
 */
final class DeviceAndDtype {
    private DeviceAndDtype() {}

    static Precision precision(EngineOptions options) {
        return Precision.parse(options.dtype());
    }

    /**
     * The device, checked against the loaded libtorch ({@link Device#parse}). A CUDA device that
     * cannot be used is a configuration error like an unknown dtype, so it is reported the same way.
     */
    static Device device(EngineOptions options) {
        try {
            return Device.parse(options.device());
        } catch (io.monostream.torch.TorchException e) {
            throw new IllegalArgumentException(e.getMessage(), e);
        }
    }
}

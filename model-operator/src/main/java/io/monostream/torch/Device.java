package io.monostream.torch;

import java.util.Locale;

/**
 * Where a tensor lives: the CPU or one CUDA device.
 *
 * <pre>{@code
 * Device d = Device.parse(options.device());   // "cpu", "cuda", "cuda:1"
 * }</pre>
 *
 * {@link #parse} fails with a clear {@link TorchException} when CUDA is asked for and the loaded
 * libtorch has no CUDA (DJL's {@code pytorch-native-cpu} flavour) or DJL sees no GPU.
 *
 * @param type  CPU or CUDA
 * @param index device ordinal; -1 for the CPU
 */
public record Device(Type type, int index) {

    /** Device kinds the project runs on. */
    public enum Type { CPU, CUDA }

    public static final Device CPU = new Device(Type.CPU, -1);

    public Device {
        if (type == Type.CPU && index != -1) {
            throw new IllegalArgumentException("the CPU device has no index");
        }
        if (type == Type.CUDA && index < 0) {
            throw new IllegalArgumentException("CUDA device index must be >= 0, got " + index);
        }
    }

    /** CUDA device {@code index}, without checking that it exists. */
    public static Device cuda(int index) {
        return new Device(Type.CUDA, index);
    }

    /**
     * Parses {@code cpu}, {@code cuda} (device 0) or {@code cuda:N} and checks that the device is
     * usable with the loaded libtorch.
     */
    public static Device parse(String spec) {
        Device d = parseSyntax(spec);
        if (d.type == Type.CUDA) {
            TorchBridge.get().requireCuda(d);
        }
        return d;
    }

    /** Parses without asking libtorch whether the device exists. */
    static Device parseSyntax(String spec) {
        String s = spec == null ? "" : spec.trim().toLowerCase(Locale.ROOT);
        if (s.equals("cpu")) {
            return CPU;
        }
        if (s.equals("cuda")) {
            return cuda(0);
        }
        if (s.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(s.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the message below
            }
        }
        throw new IllegalArgumentException("device must be cpu, cuda or cuda:N, got '" + spec + "'");
    }

    /** DJL's name for this device, for NDManagers that must allocate here. */
    public ai.djl.Device toDjl() {
        return type == Type.CPU ? ai.djl.Device.cpu() : ai.djl.Device.gpu(index);
    }

    /** This project's name for a DJL device ({@code cpu} or {@code gpu}). */
    public static Device of(ai.djl.Device djl) {
        if (djl.isGpu()) {
            return cuda(djl.getDeviceId());
        }
        if (ai.djl.Device.Type.CPU.equals(djl.getDeviceType())) {
            return CPU;
        }
        throw new IllegalArgumentException("device " + djl + " is not supported (cpu or gpu)");
    }

    @Override
    public String toString() {
        return type == Type.CPU ? "cpu" : "cuda:" + index;
    }
}

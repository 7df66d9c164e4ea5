package dev.ferry.onnx;

import dev.ferry.core.tensor.Device;
import java.util.Map;
import java.util.TreeMap;

/**
 * Which execution provider each core {@link Device} stands for: {@code cpu} is the CPU provider; an
 * accelerator {@code i} is, by default, CUDA on GPU {@code i}, or whatever provider instance the caller
 * assigns (TensorRT, or a second CPU provider instance to exercise multi-device plans on a CPU-only build).
 */
public final class OnnxDevices {

    private final Map<Integer, ExecutionProvider> accelerators;

    private OnnxDevices(Map<Integer, ExecutionProvider> accelerators) {
        this.accelerators = new TreeMap<>(accelerators);
    }

    /** Accelerator {@code i} is CUDA on GPU {@code i}. */
    public static OnnxDevices cudaByIndex() {
        return new OnnxDevices(Map.of());
    }

    /** Explicit providers per accelerator index; indices not named fall back to CUDA. */
    public static OnnxDevices of(Map<Integer, ExecutionProvider> accelerators) {
        return new OnnxDevices(accelerators);
    }

    public ExecutionProvider providerFor(Device device) {
        return switch (device.kind()) {
            case CPU -> ExecutionProvider.cpu();
            case ACCELERATOR -> accelerators.getOrDefault(device.index(), ExecutionProvider.cuda(device.index()));
            case DISK -> throw new IllegalArgumentException("disk stores weights; nothing executes on it");
        };
    }

    public boolean isAvailable(Device device) {
        return device.kind() != Device.Kind.DISK && providerFor(device).isAvailable();
    }

    @Override
    public String toString() {
        return "OnnxDevices" + accelerators;
    }
}

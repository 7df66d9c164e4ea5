package dev.ferry.onnx;

import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What the ONNX backend carries out: a device map (block → storage device), the main (execution) device for
 * offloaded blocks, and the preload classes (a module of such a class is one unit: never cut, loaded whole).
 * The same inputs as the core's dispatcher, so one plan drives both backends.
 */
public record OnnxPlan(DeviceMap deviceMap, Device mainDevice, Set<String> preloadClasses) {

    public OnnxPlan {
        Objects.requireNonNull(deviceMap, "deviceMap");
        Objects.requireNonNull(mainDevice, "mainDevice");
        if (mainDevice.kind() == Device.Kind.DISK) {
            throw new IllegalArgumentException("the main device executes blocks: an accelerator or the CPU, not disk");
        }
        preloadClasses = Set.copyOf(preloadClasses);
    }

    public static OnnxPlan of(Map<String, Device> map, Device mainDevice, Set<String> preloadClasses) {
        return new OnnxPlan(DeviceMap.of(map), mainDevice, preloadClasses);
    }

    /** The main device Accelerate would pick (the first accelerator of the map, else the CPU). */
    public static OnnxPlan of(Map<String, Device> map, Set<String> preloadClasses) {
        DeviceMap m = DeviceMap.of(map);
        return new OnnxPlan(m, m.mainDevice(), preloadClasses);
    }

    /** Whether a block stored on {@code storage} is offloaded: kept off its execution device between runs. */
    public boolean isOffloaded(Device storage) {
        return storage.kind() == Device.Kind.DISK || (storage.kind() == Device.Kind.CPU && !mainDevice.equals(storage));
    }

    /** Where a block stored on {@code storage} runs. */
    public Device executionDevice(Device storage) {
        return isOffloaded(storage) ? mainDevice : storage;
    }
}

package dev.ferry.core.dispatch;

import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.weights.WeightsStore;
import java.util.Objects;
import java.util.Set;

/**
 * What to dispatch a model with: the device map, the preload rule, Accelerate's {@code skip_keys} and
 * {@code offload_buffers}, and where offloaded weights are read from ({@code null}: offloaded tensors must be
 * materialised in the model, and are copied to host memory).
 */
public record DispatchOptions(DeviceMap deviceMap, PreloadRule preload, Set<String> skipKeys, boolean offloadBuffers,
                              WeightsStore offloadStore) {

    public DispatchOptions {
        Objects.requireNonNull(deviceMap, "deviceMap");
        preload = preload == null ? PreloadRule.none() : preload;
        skipKeys = skipKeys == null ? Set.of() : Set.copyOf(skipKeys);
    }

    public static DispatchOptions of(DeviceMap map) {
        return new DispatchOptions(map, PreloadRule.none(), Set.of(), false, null);
    }

    public DispatchOptions withPreloadClasses(Set<String> classes) {
        return new DispatchOptions(deviceMap, new PreloadRule(classes), skipKeys, offloadBuffers, offloadStore);
    }

    public DispatchOptions withOffloadStore(WeightsStore store) {
        return new DispatchOptions(deviceMap, preload, skipKeys, offloadBuffers, store);
    }

    public DispatchOptions withOffloadBuffers(boolean offload) {
        return new DispatchOptions(deviceMap, preload, skipKeys, offload, offloadStore);
    }

    public DispatchOptions withSkipKeys(Set<String> keys) {
        return new DispatchOptions(deviceMap, preload, keys, offloadBuffers, offloadStore);
    }
}

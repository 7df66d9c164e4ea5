package dev.ferry.core.dispatch;

import dev.ferry.core.hook.StreamCounter;
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
                              WeightsStore offloadStore, int prefetchBlocks, StreamCounter streamCounter) {

    /** Offloaded blocks fetched ahead of the forward by default. */
    public static final int DEFAULT_PREFETCH_BLOCKS = 1;

    public DispatchOptions {
        Objects.requireNonNull(deviceMap, "deviceMap");
        preload = preload == null ? PreloadRule.none() : preload;
        skipKeys = skipKeys == null ? Set.of() : Set.copyOf(skipKeys);
        if (prefetchBlocks < 0) {
            throw new IllegalArgumentException("prefetch blocks must be 0 (off) or more, got " + prefetchBlocks);
        }
    }

    public DispatchOptions(DeviceMap deviceMap, PreloadRule preload, Set<String> skipKeys, boolean offloadBuffers,
                           WeightsStore offloadStore, int prefetchBlocks) {
        this(deviceMap, preload, skipKeys, offloadBuffers, offloadStore, prefetchBlocks, null);
    }

    public DispatchOptions(DeviceMap deviceMap, PreloadRule preload, Set<String> skipKeys, boolean offloadBuffers,
                           WeightsStore offloadStore) {
        this(deviceMap, preload, skipKeys, offloadBuffers, offloadStore, DEFAULT_PREFETCH_BLOCKS);
    }

    public static DispatchOptions of(DeviceMap map) {
        return new DispatchOptions(map, PreloadRule.none(), Set.of(), false, null);
    }

    /** How many offloaded blocks are read and moved ahead of the forward; 0 turns prefetch off. */
    public DispatchOptions withPrefetchBlocks(int blocks) {
        return new DispatchOptions(deviceMap, preload, skipKeys, offloadBuffers, offloadStore, blocks, streamCounter);
    }

    public DispatchOptions withPreloadClasses(Set<String> classes) {
        return new DispatchOptions(deviceMap, new PreloadRule(classes), skipKeys, offloadBuffers, offloadStore, prefetchBlocks, streamCounter);
    }

    public DispatchOptions withOffloadStore(WeightsStore store) {
        return new DispatchOptions(deviceMap, preload, skipKeys, offloadBuffers, store, prefetchBlocks, streamCounter);
    }

    public DispatchOptions withOffloadBuffers(boolean offload) {
        return new DispatchOptions(deviceMap, preload, skipKeys, offload, offloadStore, prefetchBlocks, streamCounter);
    }

    /** Where the hooks count the bytes they stream (routed experts apart); {@code null}: not counted. */
    public DispatchOptions withStreamCounter(StreamCounter counter) {
        return new DispatchOptions(deviceMap, preload, skipKeys, offloadBuffers, offloadStore, prefetchBlocks, counter);
    }

    public DispatchOptions withSkipKeys(Set<String> keys) {
        return new DispatchOptions(deviceMap, preload, keys, offloadBuffers, offloadStore, prefetchBlocks, streamCounter);
    }
}

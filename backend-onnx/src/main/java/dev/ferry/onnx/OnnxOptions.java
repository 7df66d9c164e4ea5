package dev.ferry.onnx;

import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.weights.WeightsStore;
import java.nio.file.Path;

/**
 * Settings of a dispatched ONNX model.
 *
 * @param devices             which execution provider each device stands for
 * @param diskStore           where disk-offloaded initializers are read from (keyed by initializer name); {@code null}:
 *                            the model file itself, memory-mapped (its initializers already are on disk)
 * @param cacheDir            where optimised partition graphs are cached; {@code null}: a temporary folder
 *                            removed on close
 * @param intraOpThreads      ORT intra-op threads per session; 0 for ORT's default
 * @param inlineThresholdBytes initializers smaller than this (shape constants, scalars) stay inside the
 *                            sub-model; larger ones are supplied zero-copy at session creation
 * @param prefetchPartitions  how many offloaded partitions are prepared (weights read, session created) on a
 *                            background thread ahead of the run, as the PyTorch backend prefetches offloaded
 *                            blocks; 0 turns prefetch off
 */
public record OnnxOptions(OnnxDevices devices, WeightsStore diskStore, Path cacheDir, int intraOpThreads,
                          long inlineThresholdBytes, int prefetchPartitions) {

    /** Offloaded partitions prepared ahead of the run by default: as many as the core fetches blocks ahead. */
    public static final int DEFAULT_PREFETCH_PARTITIONS = DispatchOptions.DEFAULT_PREFETCH_BLOCKS;

    public OnnxOptions {
        if (prefetchPartitions < 0) {
            throw new IllegalArgumentException("prefetch partitions must be 0 (off) or more, got "
                    + prefetchPartitions);
        }
    }

    public static OnnxOptions defaults() {
        return new OnnxOptions(OnnxDevices.cudaByIndex(), null, null, 0, 1024, DEFAULT_PREFETCH_PARTITIONS);
    }

    public OnnxOptions withDevices(OnnxDevices d) {
        return new OnnxOptions(d, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes, prefetchPartitions);
    }

    public OnnxOptions withDiskStore(WeightsStore s) {
        return new OnnxOptions(devices, s, cacheDir, intraOpThreads, inlineThresholdBytes, prefetchPartitions);
    }

    public OnnxOptions withCacheDir(Path dir) {
        return new OnnxOptions(devices, diskStore, dir, intraOpThreads, inlineThresholdBytes, prefetchPartitions);
    }

    public OnnxOptions withIntraOpThreads(int n) {
        return new OnnxOptions(devices, diskStore, cacheDir, n, inlineThresholdBytes, prefetchPartitions);
    }

    /** How many offloaded partitions are prepared ahead of the run; 0 turns prefetch off. */
    public OnnxOptions withPrefetchPartitions(int n) {
        return new OnnxOptions(devices, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes, n);
    }
}

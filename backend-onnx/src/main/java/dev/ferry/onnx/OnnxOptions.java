package dev.ferry.onnx;

import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.weights.WeightsStore;
import java.nio.file.Path;

/**
 * Settings of a dispatched ONNX model.
 *
 * @param devices             which execution provider each device stands for
 * @param diskStore           where offloaded initializers are read from first (see {@link OnnxWeights}): keyed by
 *                            initializer name, or by module tensor name (an Accelerate offload folder); what it
 *                            lacks, and everything when {@code null}, comes from the memory-mapped model file and
 *                            its external data
 * @param cacheDir            where optimised partition graphs are cached; {@code null}: a temporary folder
 *                            removed on close
 * @param intraOpThreads      ORT intra-op threads per session; 0 for ORT's default
 * @param inlineThresholdBytes initializers smaller than this (shape constants, scalars) stay inside the
 *                            sub-model; larger ones are supplied zero-copy at session creation
 * @param prefetchPartitions  how many offloaded partitions are prepared (weights read, session created) on a
 *                            background thread ahead of the run, as the PyTorch backend prefetches offloaded
 *                            blocks; 0 turns prefetch off
 * @param optimizationLevel   ONNX Runtime's graph optimisation level for every partition ({@code EXTENDED_OPT} by
 *                            default). Fusions need their ops in one graph and, for quantised MatMuls, constant
 *                            weights: a cut, or an offloaded partition's weights (supplied, so not constant), can
 *                            leave an op unfused where the whole model fuses it, which changes int8 numerics a
 *                            little; at {@code NO_OPT} a split run equals the whole run at {@code NO_OPT} exactly
 */
public record OnnxOptions(OnnxDevices devices, WeightsStore diskStore, Path cacheDir, int intraOpThreads,
                          long inlineThresholdBytes, int prefetchPartitions, OptLevel optimizationLevel) {

    public OnnxOptions(OnnxDevices devices, WeightsStore diskStore, Path cacheDir, int intraOpThreads,
                       long inlineThresholdBytes, int prefetchPartitions) {
        this(devices, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes, prefetchPartitions,
                OptLevel.EXTENDED_OPT);
    }

    /** Offloaded partitions prepared ahead of the run by default: as many as the core fetches blocks ahead. */
    public static final int DEFAULT_PREFETCH_PARTITIONS = DispatchOptions.DEFAULT_PREFETCH_BLOCKS;

    public OnnxOptions {
        if (prefetchPartitions < 0) {
            throw new IllegalArgumentException("prefetch partitions must be 0 (off) or more, got "
                    + prefetchPartitions);
        }
        optimizationLevel = optimizationLevel == null ? OptLevel.EXTENDED_OPT : optimizationLevel;
    }

    public static OnnxOptions defaults() {
        return new OnnxOptions(OnnxDevices.cudaByIndex(), null, null, 0, 1024, DEFAULT_PREFETCH_PARTITIONS);
    }

    public OnnxOptions withDevices(OnnxDevices d) {
        return new OnnxOptions(d, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes, prefetchPartitions, optimizationLevel);
    }

    public OnnxOptions withDiskStore(WeightsStore s) {
        return new OnnxOptions(devices, s, cacheDir, intraOpThreads, inlineThresholdBytes, prefetchPartitions, optimizationLevel);
    }

    public OnnxOptions withCacheDir(Path dir) {
        return new OnnxOptions(devices, diskStore, dir, intraOpThreads, inlineThresholdBytes, prefetchPartitions, optimizationLevel);
    }

    public OnnxOptions withIntraOpThreads(int n) {
        return new OnnxOptions(devices, diskStore, cacheDir, n, inlineThresholdBytes, prefetchPartitions, optimizationLevel);
    }

    /** The graph optimisation level of every partition's session. */
    public OnnxOptions withOptimizationLevel(OptLevel level) {
        return new OnnxOptions(devices, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes, prefetchPartitions,
                level);
    }

    /** How many offloaded partitions are prepared ahead of the run; 0 turns prefetch off. */
    public OnnxOptions withPrefetchPartitions(int n) {
        return new OnnxOptions(devices, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes, n, optimizationLevel);
    }
}

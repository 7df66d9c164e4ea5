package dev.ferry.onnx;

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
 */
public record OnnxOptions(OnnxDevices devices, WeightsStore diskStore, Path cacheDir, int intraOpThreads,
                          long inlineThresholdBytes) {

    public static OnnxOptions defaults() {
        return new OnnxOptions(OnnxDevices.cudaByIndex(), null, null, 0, 1024);
    }

    public OnnxOptions withDevices(OnnxDevices d) {
        return new OnnxOptions(d, diskStore, cacheDir, intraOpThreads, inlineThresholdBytes);
    }

    public OnnxOptions withDiskStore(WeightsStore s) {
        return new OnnxOptions(devices, s, cacheDir, intraOpThreads, inlineThresholdBytes);
    }

    public OnnxOptions withCacheDir(Path dir) {
        return new OnnxOptions(devices, diskStore, dir, intraOpThreads, inlineThresholdBytes);
    }

    public OnnxOptions withIntraOpThreads(int n) {
        return new OnnxOptions(devices, diskStore, cacheDir, n, inlineThresholdBytes);
    }
}

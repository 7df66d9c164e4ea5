package dev.ferry.onnx;

import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.OffloadFolder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** An offload folder for an ONNX dispatch: the disk-offloaded partitions' initializers, keyed by initializer name. */
public final class OnnxOffloadFolders {

    private OnnxOffloadFolders() {
    }

    /**
     * Writes (under the same rules as the PyTorch backend: only a new, empty or Ferry's own folder, or an
     * Accelerate folder with {@code overwrite}) the initializers of the partitions {@code plan} stores on disk, and
     * opens it; a dispatch with {@link OnnxOptions#withDiskStore} then reads them through {@link OnnxWeights}. The
     * model file is not a safetensors checkpoint, so a folder is never trusted for reuse: it is rewritten.
     *
     * @throws dev.ferry.core.weights.OffloadFolderRefusedException when Ferry may not write into {@code dir}
     */
    public static OffloadFolder write(OnnxModuleTree tree, DispatchPlan plan, Path dir, boolean overwrite) {
        OnnxWeights weights = new OnnxWeights(tree, null);
        Map<String, TensorSpec> expected = new LinkedHashMap<>();
        for (Partition p : GraphPartitioner.partition(tree, plan)) {
            if (p.offloaded() && p.storage().kind() == Device.Kind.DISK) {
                p.initializers().stream().filter(weights::contains).forEach(i -> expected.put(i, weights.spec(i)));
            }
        }
        OffloadFolder.Prepared prepared = OffloadFolder.openFor(dir, expected, null, overwrite, w -> {
            w.plan(expected.keySet());
            expected.keySet().forEach(name -> w.putFrom(weights, name));
        });
        return prepared.folder();
    }
}

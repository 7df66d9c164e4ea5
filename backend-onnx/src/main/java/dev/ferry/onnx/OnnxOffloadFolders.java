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
     * opens it; a dispatch with {@link OnnxOptions#withDiskStore} then reads them through {@link OnnxWeights}. As on
     * the PyTorch backend, a folder Ferry made from the same model file and external data (size, times, inode of
     * each) that still holds what the plan needs is reused, not rewritten, so several processes can share one.
     *
     * @throws dev.ferry.core.weights.OffloadFolderRefusedException when Ferry may not write into {@code dir}
     */
    public static OffloadFolder write(OnnxModuleTree tree, DispatchPlan plan, Path dir, boolean overwrite) {
        return prepare(tree, plan, dir, overwrite).folder();
    }

    /** {@link #write}, saying whether the folder was reused as it was or (re)written, and why. */
    public static OffloadFolder.Prepared prepare(OnnxModuleTree tree, DispatchPlan plan, Path dir, boolean overwrite) {
        OnnxWeights weights = new OnnxWeights(tree, null);
        Map<String, TensorSpec> expected = new LinkedHashMap<>();
        for (Partition p : GraphPartitioner.partition(tree, plan)) {
            if (p.offloaded() && p.storage().kind() == Device.Kind.DISK) {
                p.initializers().stream().filter(weights::contains).forEach(i -> expected.put(i, weights.spec(i)));
            }
        }
        return OffloadFolder.openFor(dir, expected, tree.model().sourceFiles(), overwrite, w -> {
            w.plan(expected);
            expected.keySet().forEach(name -> w.putFrom(weights, name));
        });
    }
}

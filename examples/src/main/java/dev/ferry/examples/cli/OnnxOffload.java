package dev.ferry.examples.cli;

import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.OffloadFolderRefusedException;
import dev.ferry.onnx.GraphPartitioner;
import dev.ferry.onnx.OnnxModuleTree;
import dev.ferry.onnx.OnnxWeights;
import dev.ferry.onnx.Partition;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** {@code --offload-dir} with {@code --backend onnx}: the disk-offloaded partitions' initializers in an offload folder. */
final class OnnxOffload {

    private OnnxOffload() {
    }

    /**
     * Writes (under the same rules as the PyTorch backend: only a new, empty or Ferry's own folder, or an
     * Accelerate folder with {@code overwrite}) the initializers of the partitions {@code plan} stores on disk,
     * keyed by initializer name, and opens it; the dispatched model then reads them through {@link OnnxWeights}.
     * The model file is not a safetensors checkpoint, so a folder is never trusted for reuse: it is rewritten.
     */
    static OffloadFolder folder(OnnxModuleTree tree, DispatchPlan plan, Path dir, boolean overwrite, PrintWriter err) {
        OnnxWeights weights = new OnnxWeights(tree, null);
        Map<String, TensorSpec> expected = new LinkedHashMap<>();
        for (Partition p : GraphPartitioner.partition(tree, plan)) {
            if (p.offloaded() && p.storage().kind() == Device.Kind.DISK) {
                p.initializers().stream().filter(weights::contains).forEach(i -> expected.put(i, weights.spec(i)));
            }
        }
        try {
            OffloadFolder.Prepared prepared = OffloadFolder.openFor(dir, expected, null, overwrite, w -> {
                w.plan(expected.keySet());
                expected.keySet().forEach(name -> w.putFrom(weights, name));
            });
            err.println("offload: wrote " + dir + " (" + expected.size() + " initializers)");
            return prepared.folder();
        } catch (OffloadFolderRefusedException e) {
            throw new UsageException("--offload-dir: " + e.getMessage(), e);
        }
    }
}

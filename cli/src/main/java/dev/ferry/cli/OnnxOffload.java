package dev.ferry.cli;

import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.OffloadFolderRefusedException;
import dev.ferry.onnx.OnnxModuleTree;
import dev.ferry.onnx.OnnxOffloadFolders;
import java.io.PrintWriter;
import java.nio.file.Path;

/** {@code --offload-dir} with {@code --backend onnx}: {@link OnnxOffloadFolders#prepare}, a refusal being bad usage. */
final class OnnxOffload {

    private OnnxOffload() {
    }

    static OffloadFolder folder(OnnxModuleTree tree, DispatchPlan plan, Path dir, boolean overwrite, PrintWriter err) {
        try {
            OffloadFolder.Prepared prepared = OnnxOffloadFolders.prepare(tree, plan, dir, overwrite);
            err.println("offload: " + (prepared.reused() ? "reusing " : "wrote ") + dir + " ("
                    + prepared.folder().keys().size() + " initializers)");
            return prepared.folder();
        } catch (OffloadFolderRefusedException e) {
            throw new UsageException("--offload-dir: " + e.getMessage(), e);
        }
    }
}

package dev.ferry.onnx;

import java.nio.file.Path;
import java.util.Objects;

/** Loads an exported model and carries out a plan with the configured options (what Guice hands out). */
public final class OnnxDispatcher {

    private final OnnxOptions options;

    public OnnxDispatcher(OnnxOptions options) {
        this.options = Objects.requireNonNull(options);
    }

    public OnnxOptions options() {
        return options;
    }

    /** The module tree of an exported model, for planning (sizes, classes) before dispatching. */
    public OnnxModuleTree tree(Path onnxFile) {
        return OnnxModuleTree.build(OnnxModel.load(onnxFile));
    }

    public OnnxDispatchedModel dispatch(Path onnxFile, OnnxPlan plan) {
        return OnnxDispatchedModel.dispatch(OnnxModel.load(onnxFile), plan, options);
    }

    public OnnxDispatchedModel dispatch(OnnxModuleTree tree, OnnxPlan plan) {
        return OnnxDispatchedModel.dispatch(tree, plan, options);
    }
}

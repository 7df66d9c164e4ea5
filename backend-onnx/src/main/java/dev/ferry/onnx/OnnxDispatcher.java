package dev.ferry.onnx;

import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
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

    /** Loads {@code onnxFile} and carries out the core's plan of its module tree under {@code map}. */
    public OnnxDispatchedModel dispatch(Path onnxFile, DeviceMap map, PreloadRule preload) {
        return OnnxDispatchedModel.dispatch(OnnxModel.load(onnxFile), map, preload, options);
    }

    public OnnxDispatchedModel dispatch(OnnxModuleTree tree, DeviceMap map, PreloadRule preload) {
        return OnnxDispatchedModel.dispatch(tree, map, preload, options);
    }
}

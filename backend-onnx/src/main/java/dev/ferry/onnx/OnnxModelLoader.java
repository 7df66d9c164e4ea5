package dev.ferry.onnx;

import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.LoadRequest;
import dev.ferry.core.load.ModelLoader;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.weights.OffloadFolder;
import jakarta.inject.Inject;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The ONNX backend's {@link ModelLoader}: the folder's {@code model.onnx} split by the core's plan (one session per
 * unit), disk-offloaded initializers read from the model file in place or from an offload folder written for it.
 */
public final class OnnxModelLoader implements ModelLoader {

    private final OnnxDispatcher dispatcher;
    private final TensorBackend tensors;

    @Inject
    public OnnxModelLoader(OnnxDispatcher dispatcher, TensorBackend tensors) {
        this.dispatcher = dispatcher;
        this.tensors = tensors;
    }

    @Override
    public DispatchedModel load(LoadRequest request) {
        if (request.dtype() != null) {
            throw new IllegalArgumentException("dtype " + request.dtype().torchName()
                    + ": not supported on the ONNX backend (the exported graph fixes its types)");
        }
        if (request.quantize() != null) {
            throw new IllegalArgumentException("quantize " + request.quantize() + ": not supported on the ONNX backend "
                    + "(quantize the export with onnxruntime's quantize_dynamic instead; Ferry runs such exports)");
        }
        Path file = request.modelDir().resolve("model.onnx");
        if (!Files.isRegularFile(file)) {
            throw new IllegalArgumentException("model folder " + request.modelDir() + " has no model.onnx");
        }
        OnnxModuleTree tree = dispatcher.tree(file);
        DeviceMap map = request.deviceMapFor(tree.root(), tensors, false);
        DispatchPlan plan;
        try {
            plan = OnnxDispatchedModel.plan(tree, map, new PreloadRule(request.preloadClasses(tree.root())));
        } catch (OnnxModelException.InvalidPlan | OnnxModelException.UnknownScope | IllegalArgumentException e) {
            throw new IllegalArgumentException("device map: " + e.getMessage(), e);
        }
        OnnxOptions options = dispatcher.options().withPrefetchPartitions(request.prefetchBlocks());
        OffloadFolder folder = null;
        if (request.offloadFolder() != null) {
            folder = OnnxOffloadFolders.write(tree, plan, request.offloadFolder(), request.overwriteOffloadFolder());
            options = options.withDiskStore(folder);
        }
        try {
            OnnxDispatchedModel dispatched = OnnxDispatchedModel.dispatch(tree, plan, options);
            return new OnnxLoadedModel(dispatched, OnnxCausalLm.of(dispatched, request.modelDir()), map, folder,
                    request.modelDir());
        } catch (RuntimeException e) {
            if (folder != null) {
                folder.close();
            }
            throw e;
        }
    }
}

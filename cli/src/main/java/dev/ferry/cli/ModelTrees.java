package dev.ferry.cli;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.onnx.OnnxModel;
import dev.ferry.onnx.OnnxModuleTree;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.Set;

/** Module trees on meta (every tensor declared, none read) from a model folder. */
public final class ModelTrees {

    private ModelTrees() {
    }

    /**
     * The tree of the model in {@code dir}: from {@code config.json} with the PyTorch backend's model families
     * (reads no weight), else from {@code model.onnx}'s scope metadata (memory-mapped; weights are not copied).
     */
    static Module onMeta(Path dir, DjlBackend backend) {
        if (Files.isRegularFile(dir.resolve("config.json"))) {
            try {
                return ModelFamilies.build(dir, backend);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--model " + dir + ": " + e.getMessage(), e);
            }
        }
        // no config.json: the tree the exporter recorded in model.onnx (names and classes as in PyTorch)
        return OnnxModuleTree.build(OnnxModel.load(dir.resolve("model.onnx"))).root();
    }

    /** The causal LM of the folder's {@code config.json}, on meta (what {@code generate} runs). */
    public static CausalLM causalLmOnMeta(Path dir, DjlBackend backend) {
        if (!Files.isRegularFile(dir.resolve("config.json"))) {
            throw new UsageException("--model " + dir + ": no config.json; the PyTorch backend builds models from it");
        }
        return (CausalLM) onMeta(dir, backend);
    }

    /** Bytes of every distinct tensor of the tree (tied tensors once), as declared. */
    static long bytes(Module root) {
        IdentityHashMap<TensorSlot, Boolean> seen = new IdentityHashMap<>();
        long total = 0;
        for (TensorSlot s : root.namedTensors().values()) {
            if (seen.put(s, Boolean.TRUE) == null) {
                total += s.spec().byteSize();
            }
        }
        return total;
    }

    /** Warns about class names no module of the tree has: a typo would silently do nothing. */
    static void warnUnknownClasses(Module root, Set<String> classes, String option, java.io.PrintWriter err) {
        Set<String> present = new LinkedHashSet<>();
        root.visit(m -> present.add(m.className()));
        for (String c : classes) {
            if (!present.contains(c)) {
                err.println("warning: " + option + " " + c + ": no module of the model has this class (classes: "
                        + present + ")");
            }
        }
    }
}

package dev.ferry.pytorch.models;

import dev.ferry.core.dispatch.CheckpointNames;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.quant.QuantizationConfig;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.core.dispatch.QuantizingStore;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.WeightsStore;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlDTypes;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Linear;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Builds a model family's module tree from a Hugging Face {@code config.json} and fills it from a weights store.
 * {@link #build} creates the tree "on meta": every parameter slot declared (name, shape, dtype) and empty, so a
 * device map can be planned before any weight is read; only the computed non-persistent buffers (rotary
 * frequencies) are materialised, on the CPU. {@link #load} then puts every parameter on a device.
 */
public final class ModelFamilies {

    /** Every family this backend builds, by {@code model_type}: add a family (or a group of them) here. */
    private static final Map<String, Family> FAMILIES = register(List.of(GPT2Family.GPT2), DenseFamilies.ALL,
            MoeFamilies.ALL);

    private ModelFamilies() {
    }

    @SafeVarargs
    private static Map<String, Family> register(List<? extends Family>... groups) {
        Map<String, Family> m = new LinkedHashMap<>();
        for (List<? extends Family> group : groups) {
            for (Family f : group) {
                if (m.putIfAbsent(f.modelType(), f) != null) {
                    throw new IllegalStateException("two families read model_type '" + f.modelType() + "'");
                }
            }
        }
        return Collections.unmodifiableMap(m);
    }

    /** The {@code model_type}s this backend builds. */
    public static Set<String> supportedModelTypes() {
        return new TreeSet<>(FAMILIES.keySet());
    }

    /**
     * The family of {@code config}'s {@code model_type}.
     *
     * @throws IllegalArgumentException naming the type and the supported ones when no family reads it
     */
    public static Family family(ModelConfig config) {
        String type = config.modelType();
        Family f = FAMILIES.get(type);
        if (f == null) {
            throw new IllegalArgumentException("unknown model_type '" + type + "'; supported: " + supportedModelTypes());
        }
        return f;
    }

    /** The model of the folder's {@code config.json}, on meta. */
    public static CausalLM build(Path modelDirOrConfig, DjlBackend backend) {
        return build(ModelConfig.read(modelDirOrConfig), backend);
    }

    /**
     * The model of {@code config}, on meta, with parameters in the dtype the checkpoint will have once on a DJL
     * device (bfloat16 checkpoints run in float32).
     */
    public static CausalLM build(ModelConfig config, DjlBackend backend) {
        return build(config, backend, DjlDTypes.residentDType(config.dtype()));
    }

    public static CausalLM build(ModelConfig config, DjlBackend backend, DType dtype) {
        return build(config, backend, dtype, null);
    }

    /**
     * The model of {@code config}, on meta, in {@code dtype}, its decoder blocks' Linear weights quantized with
     * {@code quantize} ({@link #quantize}); {@code null}: as config.json declares (a {@code quantization_config} of a
     * checkpoint written by {@code ferry quantize} gives int8, and its weights are then read as stored).
     *
     * @throws IllegalArgumentException when config.json declares another scheme than {@code quantize}, or one Ferry
     *                                  does not run
     */
    public static CausalLM build(ModelConfig config, DjlBackend backend, DType dtype, QuantizationScheme quantize) {
        QuantizationScheme declared = QuantizationConfig.of(config.json()).orElse(null);
        if (declared != null && quantize != null && declared != quantize) {
            throw new IllegalArgumentException("quantize " + quantize + ": the checkpoint is already quantized as "
                    + declared + " (config.json's " + QuantizationConfig.KEY + ")");
        }
        CausalLM lm = family(config).build(config, backend, dtype);
        QuantizationScheme scheme = declared != null ? declared : quantize;
        if (scheme != null && quantize(lm, scheme) == 0) {
            throw new IllegalArgumentException("quantize " + scheme + ": " + lm.className() + " has no Linear layer "
                    + "inside its decoder blocks to quantize (GPT-2's blocks use Conv1D, which int8 does not cover)");
        }
        return lm;
    }

    /**
     * Declares the weights of the modules {@link QuantizedLinears#targets} selects (the Linear layers inside the
     * decoder blocks) as quantized with {@code scheme}; on meta, before loading. Loading then quantizes float weights
     * as they are read, or reads a quantized checkpoint's as they are. Idempotent.
     *
     * @return the number of modules quantized
     */
    public static int quantize(Module root, QuantizationScheme scheme) {
        java.util.Objects.requireNonNull(scheme, "scheme");
        List<Module> targets = QuantizedLinears.targets(root);
        for (Module m : targets) {
            if (!(m instanceof Linear linear)) {
                throw new IllegalStateException(m + " is selected for " + scheme + " weights but is not this backend's "
                        + "Linear");
            }
            linear.useInt8Weights();
        }
        return targets.size();
    }

    /** {@code checkpoint} as {@code model}'s module tree names its tensors ({@link Family#checkpointView}). */
    public static WeightsStore checkpointView(CausalLM model, WeightsStore checkpoint) {
        // then the tree's own spellings: 4.x aliases and fused experts (the one rule core's loader applies too)
        return CheckpointNames.view(model, family(model.config()).checkpointView(checkpoint));
    }

    /**
     * Loads every parameter and persistent buffer of {@code root} from {@code store} onto {@code device}
     * (converted to each slot's dtype), and moves the computed buffers there. Tied parameters are one slot,
     * read from whichever of their names the store has. Missing tensors are all named in one error; a shape
     * mismatch names the tensor and both shapes. Keys of the store the model does not use are ignored.
     */
    public static void load(Module root, WeightsStore checkpoint, DjlBackend backend, Device device) {
        backend.requireAvailable(device);
        // fused experts and 4.x names under the tree's names, then float weights of int8 modules quantized on read
        WeightsStore store = QuantizingStore.view(root, CheckpointNames.view(root, checkpoint));
        Map<TensorSlot, List<String>> names = new IdentityHashMap<>();
        List<TensorSlot> order = new ArrayList<>();
        root.stateDict().forEach((name, slot) -> {
            names.computeIfAbsent(slot, s -> {
                order.add(s);
                return new ArrayList<>();
            }).add(name);
        });
        List<String> missing = new ArrayList<>();
        Map<TensorSlot, String> source = new LinkedHashMap<>();
        for (TensorSlot slot : order) {
            String found = names.get(slot).stream().filter(store::contains).findFirst().orElse(null);
            if (found == null) {
                missing.add(CheckpointNames.describeMissing(root, String.join(" = ", names.get(slot))) + " "
                        + slot.spec());
                continue;
            }
            TensorSpec stored = store.spec(found);
            if (!Arrays.equals(stored.shape(), slot.spec().shape())) {
                throw new IllegalArgumentException("tensor '" + found + "' has shape " + stored.shapeString()
                        + " in the checkpoint but the model (" + root.className() + ") expects "
                        + slot.spec().shapeString());
            }
            if (stored.dtype() != slot.spec().dtype()
                    && !(stored.dtype().isFloatingPoint() && slot.spec().dtype().isFloatingPoint())) {
                throw new IllegalArgumentException("tensor '" + found + "' is " + stored + " in the checkpoint but the "
                        + "model (" + root.className() + ") expects " + slot.spec() + (stored.dtype() == DType.INT8
                        ? ": an int8 checkpoint loads into a model built from its own config.json (quantization_config)"
                        : ""));
            }
            source.put(slot, found);
        }
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException(missing.size() + " tensor(s) of " + root.className()
                    + " are missing from the checkpoint: " + missing);
        }
        source.forEach((slot, name) -> {
            DjlTensor t = backend.fromBytes(store.bytes(name), store.spec(name), device, slot.spec().dtype());
            slot.set(t);
        });
        Set<TensorSlot> loaded = Collections.newSetFromMap(new IdentityHashMap<>());
        loaded.addAll(source.keySet());
        root.namedTensors().values().forEach(slot -> {
            if (!loaded.contains(slot)) {
                slot.moveTo(device);
            }
        });
    }
}

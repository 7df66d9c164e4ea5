package dev.ferry.core.load;

import dev.ferry.core.module.Module;
import dev.ferry.core.placement.AvailableMemory;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.NoSplitModules;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * What {@link Ferry.Builder} collected, validated once and immutable: everything a backend's {@link ModelLoader}
 * needs. {@code null} means "the default" for each optional field.
 *
 * @param modelDir       the model folder (config.json and safetensors for PyTorch; model.onnx for ONNX)
 * @param deviceMap      an explicit map, or {@code null} to plan one with {@code strategy} under {@code maxMemory}
 * @param strategy       how to plan when {@code deviceMap} is null (Accelerate's {@code device_map="auto"} etc.)
 * @param maxMemory      budgets per device; {@code null}: what the backend reports free
 * @param noSplit        classes never split across devices; {@code null}: the family's block class
 * @param preload        preload classes; {@code null}: the family's block class; empty: preload off
 * @param offloadFolder  where disk-offloaded weights are written and read; {@code null}: read in place
 * @param overwriteOffloadFolder an offload folder Ferry did not make may be rewritten
 * @param dtype          weights as this dtype; {@code null}: as config.json declares
 * @param prefetchBlocks offloaded blocks read ahead on a background thread (0: off)
 * @param quantize       weights quantized at load with this scheme; {@code null}: as the checkpoint stores them (a
 *                       checkpoint whose config.json declares a {@code quantization_config} is loaded quantized
 *                       either way, and never quantized again)
 */
public record LoadRequest(Path modelDir, DeviceMap deviceMap, PlanRequest.Strategy strategy, Map<Device, Long> maxMemory,
                          Set<String> noSplit, Set<String> preload, Path offloadFolder, boolean overwriteOffloadFolder,
                          DType dtype, int prefetchBlocks, QuantizationScheme quantize) {

    public LoadRequest {
        Objects.requireNonNull(modelDir, "modelDir");
        Objects.requireNonNull(strategy, "strategy");
        if (prefetchBlocks < 0) {
            throw new IllegalArgumentException("prefetch must be 0 (off) or more, got " + prefetchBlocks);
        }
        maxMemory = maxMemory == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(maxMemory));
        noSplit = noSplit == null ? null : Collections.unmodifiableSet(new LinkedHashSet<>(noSplit));
        preload = preload == null ? null : Collections.unmodifiableSet(new LinkedHashSet<>(preload));
    }

    /** The preload classes for the model rooted at {@code root}: as given, else its family's block class. */
    public Set<String> preloadClasses(Module root) {
        return preload != null ? preload : NoSplitModules.of(root);
    }

    /**
     * The map to dispatch by: the one given, else planned under the budgets (preload units kept whole).
     *
     * @param dtypeApplied the tree is already in {@link #dtype} (so the planner must not convert sizes again)
     * @throws IllegalArgumentException when the budgets cannot hold the model, naming them
     */
    public DeviceMap deviceMapFor(Module root, TensorBackend backend, boolean dtypeApplied) {
        if (deviceMap != null) {
            return deviceMap;
        }
        Map<Device, Long> budgets = maxMemory != null ? maxMemory : AvailableMemory.of(backend);
        Set<String> classes = noSplit != null ? noSplit : NoSplitModules.of(root);
        PlanRequest plan = new PlanRequest(budgets, classes, strategy, dtypeApplied ? null : dtype, Map.of(), false,
                true, preloadClasses(root));
        DevicePlan planned;
        try {
            planned = new DevicePlanner().plan(root, plan);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("maxMemory " + budgets + ": " + e.getMessage(), e);
        }
        return planned.deviceMap();
    }
}

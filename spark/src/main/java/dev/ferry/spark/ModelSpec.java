package dev.ferry.spark;

import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What an executor loads and how it dispatches it: the model folder (a path every executor can read: a shared file
 * system, or a folder shipped with the job), a device map ({@code null}: chosen from the executor's resources, see
 * {@link ExecutorModels}), per-device budgets for {@code auto} planning, preload classes, an offload folder and the
 * prefetch depth. Equal specs share one dispatched model per executor JVM. Serializable: it travels in the task
 * closure; checked where it is made, on the driver, so a bad option fails the job before any task runs.
 *
 * @param modelDir      the model folder (config.json and safetensors weights)
 * @param deviceMapJson a device map in Accelerate's JSON form, or {@code null}
 * @param maxMemory     budgets {@code 0=20GiB,cpu=60GiB,disk=1TiB} for {@code auto}, or {@code null}
 * @param preload       preload classes (each such module is one unit, loaded whole, with no hook below it); {@code null}:
 *                      the model's repeated block class ({@code LlamaDecoderLayer}, ...), as the CLI's default;
 *                      empty: none
 * @param offloadDir    where disk-offloaded weights are written and read, or {@code null} to read them in place
 * @param prefetch      offloaded blocks read ahead of the forward (0 = off)
 */
public record ModelSpec(String modelDir, String deviceMapJson, String maxMemory, List<String> preload,
                        String offloadDir, int prefetch) implements Serializable {

    public ModelSpec {
        if (modelDir == null || modelDir.isBlank()) {
            throw new IllegalArgumentException("model folder is required");
        }
        preload = preload == null ? null : List.copyOf(preload);
        if (prefetch < 0) {
            throw new IllegalArgumentException("prefetch must be 0 (off) or more, got " + prefetch);
        }
        if (deviceMapJson != null) {
            DeviceMap.parseJson(deviceMapJson); // fails here, on the driver, naming the bad key
        }
        if (maxMemory != null) {
            budgets(maxMemory);
        }
    }

    /** A model folder with everything else chosen per executor. */
    public static ModelSpec of(String modelDir) {
        return new ModelSpec(modelDir, null, null, null, null, 1);
    }

    public ModelSpec withDeviceMapJson(String json) {
        return new ModelSpec(modelDir, json, maxMemory, preload, offloadDir, prefetch);
    }

    public ModelSpec withMaxMemory(String budgets) {
        return new ModelSpec(modelDir, deviceMapJson, budgets, preload, offloadDir, prefetch);
    }

    public ModelSpec withPreload(List<String> classes) {
        return new ModelSpec(modelDir, deviceMapJson, maxMemory, classes, offloadDir, prefetch);
    }

    public ModelSpec withOffloadDir(String dir) {
        return new ModelSpec(modelDir, deviceMapJson, maxMemory, preload, dir, prefetch);
    }

    public ModelSpec withPrefetch(int blocks) {
        return new ModelSpec(modelDir, deviceMapJson, maxMemory, preload, offloadDir, blocks);
    }

    /**
     * Parses {@code 0=2GiB,cpu=8GiB} (Accelerate's {@code max_memory} keys: an accelerator index, {@code cpu},
     * {@code disk}).
     *
     * @throws IllegalArgumentException naming the bad part
     */
    public static Map<Device, Long> budgets(String text) {
        Map<Device, Long> out = new LinkedHashMap<>();
        for (String part : text.split(",")) {
            String p = part.trim();
            if (p.isEmpty()) {
                continue;
            }
            int eq = p.indexOf('=');
            if (eq <= 0 || eq == p.length() - 1) {
                throw new IllegalArgumentException("max memory '" + p + "' is not DEVICE=SIZE (e.g. 0=2GiB,cpu=8GiB)");
            }
            out.put(Device.parse(p.substring(0, eq)), SizeStrings.parse(p.substring(eq + 1).trim()));
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException("max memory '" + text + "' names no budget (e.g. 0=2GiB,cpu=8GiB)");
        }
        return out;
    }
}

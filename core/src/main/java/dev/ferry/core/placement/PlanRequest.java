package dev.ferry.core.placement;

import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;

/**
 * What {@link DevicePlanner#plan} needs besides the model.
 *
 * @param maxMemory            per-device budget in bytes. Only devices named here are used: accelerators in index
 *                             order, then {@code cpu}. {@code disk} may carry a budget too; without one disk is
 *                             unbounded. Nothing is added behind the caller's back (Accelerate adds 80 % of the
 *                             host's free RAM as {@code cpu} when it is absent; Ferry does not).
 * @param noSplitModuleClasses class names of modules that are never split across devices
 *                             (e.g. {@code LlamaDecoderLayer}); names that match no module are reported as warnings
 * @param strategy             how the accelerator budgets are used, see {@link Strategy}
 * @param dtype                dtype the weights will be loaded in (floating-point tensors never grow), or
 *                             {@code null} for their declared dtype
 * @param specialDtypes        full tensor name → dtype for tensors loaded in a dtype of their own
 * @param offloadBuffers       whether buffers of blocks stored on cpu / disk are offloaded with their parameters;
 *                             when {@code false} (the default, as in Accelerate) they stay on the execution device,
 *                             and the plan warns when they fit no accelerator's remaining budget
 * @param allowDisk            whether blocks that fit no budget may be stored on disk (default {@code true}, as in
 *                             Accelerate, which always appends disk); when {@code false}, a block that fits nowhere
 *                             is an error
 * @param preloadClasses       the preload classes the map will be dispatched with: a preload unit is placed whole
 *                             (the dispatcher refuses a map that splits one), so the planner never splits these
 *                             either, as if they were no-split classes
 */
public record PlanRequest(Map<Device, Long> maxMemory, Set<String> noSplitModuleClasses, Strategy strategy,
                          DType dtype, Map<String, DType> specialDtypes, boolean offloadBuffers, boolean allowDisk,
                          Set<String> preloadClasses) {

    public PlanRequest(Map<Device, Long> maxMemory, Set<String> noSplitModuleClasses, Strategy strategy, DType dtype,
                       Map<String, DType> specialDtypes, boolean offloadBuffers, boolean allowDisk) {
        this(maxMemory, noSplitModuleClasses, strategy, dtype, specialDtypes, offloadBuffers, allowDisk, Set.of());
    }

    /** How budgets are turned into a map. */
    public enum Strategy {
        /**
         * Ferry's {@code "auto"}, as transformers' {@code device_map="auto"}: the same as {@link #BALANCED} (with one
         * accelerator that is a sequential fill). Accelerate's {@code infer_auto_device_map} on its own is
         * {@link #SEQUENTIAL}.
         */
        AUTO,
        /** Budgets of all accelerators but the last lowered to an even share (Accelerate's {@code get_balanced_memory}), then filled in order. */
        BALANCED,
        /** As {@link #BALANCED}, keeping accelerator 0 as empty as possible for generation's own tensors. */
        BALANCED_LOW_0,
        /** Fill accelerators in index order up to their budgets, then cpu, then disk. */
        SEQUENTIAL;

        /** Parses {@code auto}, {@code balanced}, {@code balanced_low_0}, {@code sequential} (transformers' names). */
        public static Strategy parse(String name) {
            for (Strategy s : values()) {
                if (s.name().equalsIgnoreCase(name.trim())) {
                    return s;
                }
            }
            throw new IllegalArgumentException("unknown device map strategy '" + name
                    + "', expected auto, balanced, balanced_low_0 or sequential");
        }
    }

    public PlanRequest {
        Objects.requireNonNull(maxMemory, "maxMemory");
        Objects.requireNonNull(strategy, "strategy");
        TreeMap<Device, Long> sorted = new TreeMap<>();
        for (Map.Entry<Device, Long> e : maxMemory.entrySet()) {
            Device d = Objects.requireNonNull(e.getKey(), "a device in maxMemory is null");
            Long b = e.getValue();
            if (b == null || b < 0) {
                throw new IllegalArgumentException("maxMemory for " + d + " is " + b + "; expected a byte count >= 0");
            }
            sorted.put(d, b);
        }
        maxMemory = Collections.unmodifiableMap(new LinkedHashMap<>(sorted));
        noSplitModuleClasses = noSplitModuleClasses == null ? Set.of()
                : Collections.unmodifiableSet(new LinkedHashSet<>(noSplitModuleClasses));
        specialDtypes = specialDtypes == null ? Map.of() : Map.copyOf(specialDtypes);
        preloadClasses = preloadClasses == null ? Set.of()
                : Collections.unmodifiableSet(new LinkedHashSet<>(preloadClasses));
    }

    /** The classes the planner keeps whole: the no-split classes and the preload classes. */
    public Set<String> atomicClasses() {
        Set<String> out = new LinkedHashSet<>(noSplitModuleClasses);
        out.addAll(preloadClasses);
        return Collections.unmodifiableSet(out);
    }

    /** The same request for a dispatch with these preload classes (each placed whole). */
    public PlanRequest withPreload(Set<String> classes) {
        return new PlanRequest(maxMemory, noSplitModuleClasses, strategy, dtype, specialDtypes, offloadBuffers,
                allowDisk, classes);
    }

    /** {@link Strategy#AUTO} over {@code maxMemory}, no no-split classes, declared dtypes, disk allowed. */
    public static PlanRequest of(Map<Device, Long> maxMemory) {
        return new PlanRequest(maxMemory, Set.of(), Strategy.AUTO, null, Map.of(), false, true);
    }

    /**
     * Budgets in Accelerate's form: keys {@code 0}, {@code "0"}, {@code "cuda:1"}, {@code "cpu"}, {@code "disk"};
     * values byte counts or size strings ({@code "10GiB"}), see {@link SizeStrings}.
     */
    public static Map<Device, Long> parseMaxMemory(Map<?, ?> accelerateForm) {
        LinkedHashMap<Device, Long> out = new LinkedHashMap<>();
        accelerateForm.forEach((k, v) -> {
            Device d;
            try {
                d = Device.parse(String.valueOf(k));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("max_memory key '" + k + "': " + e.getMessage(), e);
            }
            try {
                out.put(d, SizeStrings.parse(v));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("max_memory for '" + k + "': " + e.getMessage(), e);
            }
        });
        return out;
    }

    public PlanRequest withStrategy(Strategy s) {
        return new PlanRequest(maxMemory, noSplitModuleClasses, s, dtype, specialDtypes, offloadBuffers, allowDisk, preloadClasses);
    }

    public PlanRequest withNoSplit(String... classNames) {
        return new PlanRequest(maxMemory, Set.of(classNames), strategy, dtype, specialDtypes, offloadBuffers, allowDisk, preloadClasses);
    }

    public PlanRequest withDtype(DType t) {
        return new PlanRequest(maxMemory, noSplitModuleClasses, strategy, t, specialDtypes, offloadBuffers, allowDisk, preloadClasses);
    }

    public PlanRequest withSpecialDtypes(Map<String, DType> special) {
        return new PlanRequest(maxMemory, noSplitModuleClasses, strategy, dtype, special, offloadBuffers, allowDisk, preloadClasses);
    }

    public PlanRequest withOffloadBuffers(boolean offload) {
        return new PlanRequest(maxMemory, noSplitModuleClasses, strategy, dtype, specialDtypes, offload, allowDisk, preloadClasses);
    }

    public PlanRequest withDisk(boolean allowed) {
        return new PlanRequest(maxMemory, noSplitModuleClasses, strategy, dtype, specialDtypes, offloadBuffers, allowed, preloadClasses);
    }
}

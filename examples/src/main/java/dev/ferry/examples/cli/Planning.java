package dev.ferry.examples.cli;

import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DevicePlan;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;

/** Device maps planned from budgets ({@code --device-map auto}, {@code ferry plan}). */
final class Planning {

    private Planning() {
    }

    /**
     * Budgets when {@code --max-memory} is not given, as Accelerate's {@code get_max_memory}: each accelerator's
     * free memory, then the host's available memory; disk unbounded.
     */
    static Map<Device, Long> defaultBudgets(TensorBackend backend) {
        Map<Device, Long> out = new LinkedHashMap<>();
        for (int i = 0; i < 64 && backend.isAvailable(Device.accelerator(i)); i++) {
            Device d = Device.accelerator(i);
            backend.freeMemory(d).ifPresent(free -> out.put(d, free));
        }
        out.put(Device.cpu(), availableHostMemory());
        return out;
    }

    /** {@code MemAvailable} of {@code /proc/meminfo} where there is one, else the JVM's view of free memory. */
    static long availableHostMemory() {
        Path meminfo = Path.of("/proc/meminfo");
        if (Files.isReadable(meminfo)) {
            try {
                for (String line : Files.readAllLines(meminfo)) {
                    if (line.startsWith("MemAvailable:")) {
                        String[] parts = line.split("\\s+");
                        return Long.parseLong(parts[1]) * 1024;
                    }
                }
            } catch (IOException | RuntimeException ignored) {
                // fall through to the JVM's figure
            }
        }
        var os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean sun) {
            return sun.getFreeMemorySize();
        }
        return Runtime.getRuntime().maxMemory();
    }

    /**
     * Plans {@code root}. Preload classes are placed whole, so they are added to the no-split classes; when
     * {@code noSplit} is null the family's repeated block class is used (transformers' {@code _no_split_modules}).
     */
    static DevicePlan plan(Module root, Map<Device, Long> budgets, Set<String> noSplit, Set<String> preload,
                           PlanRequest.Strategy strategy, DType dtype) {
        Set<String> classes = new LinkedHashSet<>(noSplit != null ? noSplit : ModelTrees.defaultNoSplit(root));
        classes.addAll(preload);
        PlanRequest request = new PlanRequest(budgets, classes, strategy, dtype, Map.of(), false, true);
        return new DevicePlanner().plan(root, request);
    }

    /** {@code --max-memory} as one line: {@code cpu=400.00 KiB, disk unbounded}. */
    static String describeBudgets(Map<Device, Long> budgets) {
        StringBuilder sb = new StringBuilder();
        budgets.forEach((d, b) -> sb.append(sb.length() == 0 ? "" : ", ").append(d).append('=')
                .append(SizeStrings.format(b)));
        if (!budgets.containsKey(Device.disk())) {
            sb.append(", disk unbounded");
        }
        return sb.toString();
    }
}

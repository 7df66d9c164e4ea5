package dev.ferry.core.placement;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorBackend;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Budgets for planning when the user gives none, as Accelerate's {@code get_max_memory}: each accelerator's
 * free memory as its backend reports it, then the host's available memory. Disk is left unbounded.
 */
public final class AvailableMemory {

    private AvailableMemory() {
    }

    /** Free memory of every accelerator {@code backend} has (in index order), then the CPU's. */
    public static Map<Device, Long> of(TensorBackend backend) {
        Map<Device, Long> out = new LinkedHashMap<>();
        for (int i = 0; backend.isAvailable(Device.accelerator(i)); i++) {
            Device d = Device.accelerator(i);
            backend.freeMemory(d).ifPresent(free -> out.put(d, free));
        }
        out.put(Device.cpu(), host());
        return out;
    }

    /** {@code MemAvailable} of {@code /proc/meminfo} where there is one, else the JVM's view of free memory. */
    public static long host() {
        Path meminfo = Path.of("/proc/meminfo");
        if (Files.isReadable(meminfo)) {
            try {
                for (String line : Files.readAllLines(meminfo)) {
                    if (line.startsWith("MemAvailable:")) {
                        return Long.parseLong(line.split("\\s+")[1]) * 1024;
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
}

package dev.ferry.core.load;

import dev.ferry.core.placement.SizeStrings;
import dev.ferry.core.tensor.Device;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * Budgets ({@code max_memory}) checked against what the machine has: a CPU budget above its physical memory, or a
 * disk budget above the free space where offloaded weights would be written, plans blocks into memory that is not
 * there, which fails later and less clearly (a refused memory map, the OOM killer). These are warnings, not errors:
 * Accelerate accepts such budgets too, and swap or a growing disk may make them work.
 */
public final class MachineBudgets {

    private MachineBudgets() {
    }

    /** Warnings for {@code budgets} on this machine; {@code offloadFolder} may be null (no disk check then). */
    public static List<String> warnings(Map<Device, Long> budgets, Path offloadFolder) {
        return warnings(budgets, physicalMemory(), offloadFolder == null ? OptionalLong.empty()
                : usableSpace(offloadFolder), offloadFolder);
    }

    /** Warnings for {@code budgets} against the given totals (empty when unknown). */
    static List<String> warnings(Map<Device, Long> budgets, OptionalLong hostMemory, OptionalLong diskFree,
            Path offloadFolder) {
        List<String> out = new ArrayList<>();
        if (budgets == null) {
            return out;
        }
        Long cpu = budgets.get(Device.cpu());
        if (cpu != null && hostMemory.isPresent() && cpu > hostMemory.getAsLong()) {
            out.add("the cpu budget " + SizeStrings.format(cpu) + " is more than this machine's physical memory ("
                    + SizeStrings.format(hostMemory.getAsLong()) + "): blocks planned into the difference will not "
                    + "fit; lower cpu= (to leave room for the JVM and the OS, about 80% of it) so that the rest goes "
                    + "to disk");
        }
        Long disk = budgets.get(Device.disk());
        if (disk != null && diskFree.isPresent() && disk > diskFree.getAsLong()) {
            out.add("the disk budget " + SizeStrings.format(disk) + " is more than the free space where the offload "
                    + "folder " + offloadFolder + " is (" + SizeStrings.format(diskFree.getAsLong()) + "); free "
                    + "space, pick another folder, or lower disk=");
        }
        return out;
    }

    /** The machine's physical memory, when the JVM can tell. */
    static OptionalLong physicalMemory() {
        try {
            if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) {
                long total = os.getTotalMemorySize();
                return total > 0 ? OptionalLong.of(total) : OptionalLong.empty();
            }
        } catch (LinkageError | RuntimeException e) {
            // no jdk.management module: no check
        }
        return OptionalLong.empty();
    }

    /** Free space for {@code folder}, asked of its nearest existing ancestor (the folder may not exist yet). */
    static OptionalLong usableSpace(Path folder) {
        for (Path p = folder.toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.exists(p)) {
                try {
                    return OptionalLong.of(Files.getFileStore(p).getUsableSpace());
                } catch (IOException e) {
                    return OptionalLong.empty();
                }
            }
        }
        return OptionalLong.empty();
    }
}

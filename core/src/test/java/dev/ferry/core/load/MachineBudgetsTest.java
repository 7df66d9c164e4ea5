package dev.ferry.core.load;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.tensor.Device;
import java.nio.file.Path;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class MachineBudgetsTest {

    private static final long GIB = 1L << 30;

    @Test
    void aCpuBudgetAboveThePhysicalMemoryIsAWarningNamingBoth() {
        assertThat(MachineBudgets.warnings(Map.of(Device.cpu(), 64 * GIB), OptionalLong.of(23 * GIB),
                OptionalLong.empty(), null))
                .singleElement().asString()
                .contains("the cpu budget 64.00 GiB is more than this machine's physical memory (23.00 GiB)");
    }

    @Test
    void aDiskBudgetAboveTheFreeSpaceOfTheOffloadFolderIsAWarningNamingBoth() {
        assertThat(MachineBudgets.warnings(Map.of(Device.disk(), 100 * GIB), OptionalLong.of(23 * GIB),
                OptionalLong.of(10 * GIB), Path.of("/data/offload")))
                .singleElement().asString()
                .contains("the disk budget 100.00 GiB", "/data/offload", "(10.00 GiB)");
    }

    @Test
    void budgetsWithinTheMachineGiveNoWarning() {
        assertThat(MachineBudgets.warnings(Map.of(Device.cpu(), 8 * GIB, Device.accelerator(0), 80 * GIB),
                OptionalLong.of(23 * GIB), OptionalLong.empty(), null)).isEmpty();
    }

    @Test
    void thisMachinesMemoryIsKnown() {
        assertThat(MachineBudgets.physicalMemory()).isPresent();
        assertThat(MachineBudgets.warnings(Map.of(Device.cpu(), Long.MAX_VALUE / 2), null)).hasSize(1);
    }
}

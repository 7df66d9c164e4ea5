package dev.ferry.core.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.TestBackend;
import java.util.Map;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

class AvailableMemoryTest {

    @Test
    void budgetsAreEachAcceleratorsFreeMemoryThenTheHosts() {
        TestBackend twoGpus = new TestBackend(2) {
            @Override
            public OptionalLong freeMemory(Device device) {
                return OptionalLong.of(1000L * (device.index() + 1));
            }
        };
        Map<Device, Long> budgets = AvailableMemory.of(twoGpus);
        assertThat(budgets.keySet()).containsExactly(Device.accelerator(0), Device.accelerator(1), Device.cpu());
        assertThat(budgets.get(Device.accelerator(1))).isEqualTo(2000L);
        assertThat(budgets.get(Device.cpu())).isPositive();
    }

    @Test
    void aCpuOnlyMachineBudgetsTheHostAlone() {
        assertThat(AvailableMemory.of(new TestBackend(0)).keySet()).containsExactly(Device.cpu());
    }
}

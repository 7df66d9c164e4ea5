package dev.ferry.spark;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.util.OptionalInt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The device map an executor chooses from its resources when the spec names none. */
class ExecutorDeviceMapTest {

    static DjlBackend backend;
    static CausalLM model;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
        model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @Test
    void withoutAGpuOrBudgetsTheWholeModelIsOnTheCpu() {
        DeviceMap map = ExecutorModels.deviceMap(ModelSpec.of("m"), model, backend, OptionalInt.empty());

        assertThat(map).isEqualTo(DeviceMap.single(Device.cpu()));
    }

    @Test
    void aGpuAssignedToACpuOnlyLibtorchFallsBackToTheCpu() {
        assertThat(backend.hasCuda()).isFalse();

        DeviceMap map = ExecutorModels.deviceMap(ModelSpec.of("m"), model, backend, OptionalInt.of(1));

        assertThat(map).isEqualTo(DeviceMap.single(Device.cpu()));
    }

    @Test
    void cpuBudgetsPlanAutoAndSpillToDisk() {
        ModelSpec spec = ModelSpec.of("m").withMaxMemory("cpu=400KiB");

        DeviceMap map = ExecutorModels.deviceMap(spec, model, backend, OptionalInt.empty());

        assertThat(map.entries()).containsValue(Device.disk()).containsEntry("model.embed_tokens", Device.cpu());
    }

    @Test
    void anExplicitMapIsUsedAsGiven() {
        ModelSpec spec = ModelSpec.of("m").withDeviceMapJson("{\"\": \"cpu\"}");

        assertThat(ExecutorModels.deviceMap(spec, model, backend, OptionalInt.of(0)))
                .isEqualTo(DeviceMap.single(Device.cpu()));
    }
}

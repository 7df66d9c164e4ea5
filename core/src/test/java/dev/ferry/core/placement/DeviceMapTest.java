package dev.ferry.core.placement;

import static dev.ferry.core.placement.TestModels.CPU;
import static dev.ferry.core.placement.TestModels.GPU0;
import static dev.ferry.core.placement.TestModels.GPU1;
import static dev.ferry.core.placement.TestModels.GPU2;
import static dev.ferry.core.placement.TestModels.map;
import static dev.ferry.core.placement.TestModels.modelForTest;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

/** Accelerate's test_clean_device_map, test_check_device_map and test_check_device_map_invalid_keys. */
class DeviceMapTest {

    @Test
    void cleanRegroupsEverythingOnOneDevice() {
        DeviceMap cleaned = DeviceMap.of(map("a", GPU0, "b", GPU0, "c", GPU0)).clean();

        assertThat(cleaned.entries()).containsExactlyEntriesOf(map("", GPU0));
    }

    @Test
    void cleanRegroupsChildrenOfLevelOne() {
        DeviceMap cleaned = DeviceMap.of(map("a.x", GPU0, "a.y", GPU0, "b.x", GPU1, "b.y", GPU1, "c", GPU1)).clean();

        assertThat(cleaned.entries()).containsExactlyEntriesOf(map("a", GPU0, "b", GPU1, "c", GPU1));
    }

    @Test
    void cleanRegroupsChildrenOfLevelTwo() {
        DeviceMap cleaned = DeviceMap.of(map("a.x", GPU0, "a.y", GPU0, "b.x.0", GPU1, "b.x.1", GPU1,
                "b.y.0", GPU2, "b.y.1", GPU2, "c", GPU2)).clean();

        assertThat(cleaned.entries()).containsExactlyEntriesOf(map("a", GPU0, "b.x", GPU1, "b.y", GPU2, "c", GPU2));
    }

    @Test
    void cleanDoesNotConfuseSiblingsSharingAPrefix() {
        DeviceMap cleaned = DeviceMap.of(map("layers.1", GPU0, "layers.10", GPU1, "layers.11", GPU1)).clean();

        assertThat(cleaned.entries()).containsExactlyEntriesOf(map("layers.1", GPU0, "layers.10", GPU1, "layers.11", GPU1));
    }

    @Test
    void wholeModelKeyCoversEverything() {
        assertThatCode(() -> DeviceMap.of(map("", GPU0)).resolve(modelForTest())).doesNotThrowAnyException();
    }

    @Test
    void uncoveredTensorsAreNamed() {
        assertThatThrownBy(() -> DeviceMap.of(map("linear1", GPU0, "linear2", GPU1)).resolve(modelForTest()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("batchnorm.weight").hasMessageContaining("batchnorm.running_mean");
    }

    @Test
    void mapCoveringEveryModuleResolves() {
        DeviceMap resolved = DeviceMap.of(map("linear1", GPU0, "linear2", GPU1, "batchnorm", GPU1))
                .resolve(modelForTest());

        assertThat(resolved.deviceOf("batchnorm.running_var")).isEqualTo(GPU1);
    }

    @Test
    void keysMatchingNoModuleAreNamed() {
        DeviceMap bad = DeviceMap.of(map("linear1", CPU, "batchnorm", CPU, "linear2", CPU,
                "invalid_module", GPU0, "another_invalid", GPU1));

        assertThatThrownBy(() -> bad.resolve(modelForTest()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("invalid_module").hasMessageContaining("another_invalid");
    }

    @Test
    void deviceOfUsesTheLongestPrefix() {
        DeviceMap m = DeviceMap.of(map("model", GPU0, "model.layers.1", CPU));

        assertThat(m.deviceOf("model.layers.1.mlp")).isEqualTo(CPU);
        assertThat(m.deviceOf("model.layers.10.mlp")).isEqualTo(GPU0);
    }

    @Test
    void duplicateKeyInJsonIsRefusedNamingTheKey() {
        assertThatThrownBy(() -> DeviceMap.parseJson("{\"model.layers.0\": 0, \"model.layers.0\": \"disk\"}"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Duplicate field 'model.layers.0'").hasMessageContaining("line 1, column");
    }

    @Test
    void trailingTextAfterTheJsonMapIsRefusedNamingThePosition() {
        assertThatThrownBy(() -> DeviceMap.parseJson("{\"\": \"cpu\"}\n{\"lm_head\": 0}"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("Trailing token").hasMessageContaining("line 2, column");
    }

    @Test
    void trailingWhitespaceAfterTheJsonMapIsFine() {
        assertThat(DeviceMap.parseJson("{\"\": \"cpu\"}\n\n").entries()).containsOnlyKeys("");
    }
}

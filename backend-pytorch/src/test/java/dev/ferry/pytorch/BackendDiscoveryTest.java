package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.inject.BackendModule;
import org.junit.jupiter.api.Test;

class BackendDiscoveryTest {

    @Test
    void theBackendIsFoundOnTheClassPathByName() {
        assertThat(BackendModule.names()).contains("pytorch");
        assertThat(BackendModule.named("pytorch")).isInstanceOf(PyTorchBackendModule.class);
    }
}

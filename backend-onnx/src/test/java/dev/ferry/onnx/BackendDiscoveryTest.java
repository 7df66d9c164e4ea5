package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.inject.BackendModule;
import org.junit.jupiter.api.Test;

class BackendDiscoveryTest {

    @Test
    void theBackendIsFoundOnTheClassPathByName() {
        assertThat(BackendModule.names()).contains("onnx");
        assertThat(BackendModule.named("onnx")).isInstanceOf(OnnxBackendModule.class);
    }
}

package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.inject.Guice;
import com.google.inject.Injector;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import org.junit.jupiter.api.Test;

class OnnxBackendModuleTest {

    @Test
    void guiceBindsTheBackendAndADispatcher() {
        Injector injector = Guice.createInjector(new OnnxBackendModule(CausalLmFidelityTest.OPTIONS));
        TensorBackend backend = injector.getInstance(TensorBackend.class);
        assertThat(backend.name()).isEqualTo("onnxruntime");
        assertThat(backend.isAvailable(Device.cpu())).isTrue();
        assertThat(backend.isAvailable(Device.accelerator(0))).isTrue(); // assigned a CPU provider instance
        assertThat(Guice.createInjector(new OnnxBackendModule()).getInstance(TensorBackend.class)
                .isAvailable(Device.accelerator(0))).isFalse(); // CUDA, absent from the CPU build

        ByteBuffer b = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).flip();
        try (Tensor t = backend.fromBytes(b, TensorSpec.of(DType.FLOAT32, 2), Device.cpu());
             Tensor g = t.to(Device.accelerator(0))) {
            assertThat(g.device()).isEqualTo(Device.accelerator(0));
            assertThat(g.toBytes().order(ByteOrder.LITTLE_ENDIAN).getFloat(4)).isEqualTo(-2f);
            assertThat(t.to(Device.cpu())).isSameAs(t);
        }

        OnnxDispatcher dispatcher = injector.getInstance(OnnxDispatcher.class);
        try (OnnxDispatchedModel d = dispatcher.dispatch(TestModels.fixture("tiny-gpt2", "model.onnx"),
                DeviceMap.of(Map.of("", Device.accelerator(0))), PreloadRule.none())) {
            assertThat(d.report().sessionCount()).isEqualTo(1);
        }
    }
}

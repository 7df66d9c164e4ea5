package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.google.inject.Guice;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.Tensor;
import dev.ferry.core.tensor.TensorBackend;
import dev.ferry.core.tensor.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class DjlBackendTest {

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static ByteBuffer f32(float... v) {
        ByteBuffer b = ByteBuffer.allocateDirect(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b;
    }

    static float[] floats(Tensor t) {
        ByteBuffer b = t.toBytes();
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    @Test
    void directBuffersAreUsedInPlaceOnTheCpu() {
        ByteBuffer buf = f32(1, 2, 3, 4);
        try (DjlTensor t = backend.fromBytes(buf, TensorSpec.of(DType.FLOAT32, 2, 2), Device.cpu())) {
            buf.putFloat(0, 42f); // the tensor sees the change: no copy was made
            assertThat(floats(t)).containsExactly(42, 2, 3, 4);
            assertThat(t.spec()).isEqualTo(TensorSpec.of(DType.FLOAT32, 2, 2));
            assertThat(t.device()).isEqualTo(Device.cpu());
            assertThat(t.to(Device.cpu())).isSameAs(t);
        }
    }

    @Test
    void heapAndOffsetBuffersAreCopiedOnceAndRespectPosition() {
        ByteBuffer heap = ByteBuffer.allocate(4 * 5).order(ByteOrder.LITTLE_ENDIAN);
        heap.asFloatBuffer().put(new float[] {9, 1, 2, 3, 4});
        heap.position(4);
        try (DjlTensor t = backend.fromBytes(heap, TensorSpec.of(DType.FLOAT32, 4), Device.cpu())) {
            assertThat(floats(t)).containsExactly(1, 2, 3, 4);
        }
        ByteBuffer direct = f32(9, 1, 2, 3, 4).position(4);
        try (DjlTensor t = backend.fromBytes(direct, TensorSpec.of(DType.FLOAT32, 4), Device.cpu())) {
            assertThat(floats(t)).containsExactly(1, 2, 3, 4);
        }
    }

    @Test
    void convertedWeightsReuseStagingBuffersOnceTheirTensorIsClosed() {
        ByteBuffer bf = DTypeConversion.convert(f32(3f, -1f, 0.5f, 7f), DType.FLOAT32, DType.BFLOAT16);
        long reusedBefore = backend.staging().reused();
        for (int i = 0; i < 5; i++) {
            try (DjlTensor t = backend.fromBytes(bf, TensorSpec.of(DType.BFLOAT16, 4), Device.cpu())) {
                assertThat(floats(t)).containsExactly(3f, -1f, 0.5f, 7f);
            }
        }
        assertThat(backend.staging().reused() - reusedBefore).isGreaterThanOrEqualTo(4);
    }

    @Test
    void bfloat16IsConvertedInJavaAndNeverReachesDjl() {
        ByteBuffer bf = DTypeConversion.convert(f32(1.5f, -2f, 0.25f), DType.FLOAT32, DType.BFLOAT16);
        try (DjlTensor t = backend.fromBytes(bf, TensorSpec.of(DType.BFLOAT16, 3), Device.cpu())) {
            assertThat(t.spec()).isEqualTo(TensorSpec.of(DType.FLOAT32, 3));
            assertThat(floats(t)).containsExactly(1.5f, -2f, 0.25f);
        }
        ByteBuffer half = DTypeConversion.convert(f32(1.5f, -2f), DType.FLOAT32, DType.FLOAT16);
        try (DjlTensor t = backend.fromBytes(half, TensorSpec.of(DType.FLOAT16, 2), Device.cpu(), DType.FLOAT32)) {
            assertThat(floats(t)).containsExactly(1.5f, -2f);
        }
    }

    @Test
    void bfloat16RebuiltFromItsBitsByTensorOpsEqualsTheJavaConversionExactly() {
        // what a GPU runs for a bf16 checkpoint (bf16OnDevice), checked here on the CPU: every bit pattern class
        float[] values = {0f, -0f, 1f, -1.5f, 3.140625f, 65504f, -1e30f, 1e-30f, 1.1754944e-38f, 9.18355e-41f,
            -1.469368e-39f, 0.0078125f, 123456789f, -2.5e-5f};
        ByteBuffer bf = DTypeConversion.convert(f32(values), DType.FLOAT32, DType.BFLOAT16);
        float[] expected = new float[values.length];
        DTypeConversion.convert(bf.duplicate(), DType.BFLOAT16, DType.FLOAT32).asFloatBuffer().get(expected);
        try (DjlTensor t = backend.bf16OnDevice(bf, TensorSpec.of(DType.BFLOAT16, 2, 7), Device.cpu(),
                ai.djl.ndarray.types.DataType.FLOAT32)) {
            assertThat(t.spec()).isEqualTo(TensorSpec.of(DType.FLOAT32, 2, 7));
            assertThat(t.array().toFloatArray()).containsExactly(expected);
        }
    }

    @Test
    void dtypesThatAbortDjlAreJavaErrors() {
        ByteBuffer b = ByteBuffer.allocateDirect(8);
        assertThatThrownBy(() -> backend.fromBytes(b, TensorSpec.of(DType.INT16, 4), Device.cpu()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("int16");
        assertThatThrownBy(() -> backend.fromBytes(b, TensorSpec.of(DType.FLOAT32, 2), Device.cpu(), DType.BFLOAT16))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("bfloat16");
        assertThatThrownBy(() -> backend.fromBytes(b, TensorSpec.of(DType.FLOAT8_E4M3FN, 8), Device.cpu()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("float8");
        assertThatThrownBy(() -> backend.fromBytes(b, TensorSpec.of(DType.FLOAT32, 3), Device.cpu()))
                .hasMessageContaining("needs 12 bytes, got 8");
    }

    @Test
    void absentDevicesAreClearErrorsNotNativeCrashes() {
        assertThat(backend.isAvailable(Device.cpu())).isTrue();
        assertThat(backend.isAvailable(Device.disk())).isFalse();
        // this machine runs pytorch-native-cpu: no CUDA, whatever the hardware
        assertThat(backend.hasCuda()).isFalse();
        assertThat(backend.defaultDevice()).isEqualTo(Device.cpu());
        assertThat(backend.isAvailable(Device.accelerator(0))).isFalse();
        assertThat(backend.freeMemory(Device.accelerator(0))).isEmpty();
        assertThatThrownBy(() -> backend.fromBytes(f32(1), TensorSpec.of(DType.FLOAT32, 1), Device.accelerator(0)))
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("gpu0 is not available").hasMessageContaining("without CUDA");
        try (DjlTensor t = backend.fromBytes(f32(1), TensorSpec.of(DType.FLOAT32, 1), Device.cpu())) {
            assertThatThrownBy(() -> t.to(Device.accelerator(1))).hasMessageContaining("gpu1 is not available");
            assertThatThrownBy(() -> t.to(Device.disk())).hasMessageContaining("storage location");
        }
        assertThat(DjlBackend.toDjl(Device.accelerator(3))).isEqualTo(ai.djl.Device.gpu(3));
        assertThat(DjlBackend.fromDjl(ai.djl.Device.gpu(2))).isEqualTo(Device.accelerator(2));
        assertThat(DjlBackend.fromDjl(ai.djl.Device.cpu())).isEqualTo(Device.cpu());
    }

    @Test
    void closingFreesTheNativeArray() {
        int before = backend.liveArrayCount();
        DjlTensor t = backend.fromBytes(f32(1, 2), TensorSpec.of(DType.FLOAT32, 2), Device.cpu());
        assertThat(backend.liveArrayCount()).isEqualTo(before + 1);
        t.close();
        t.close(); // idempotent
        assertThat(t.isClosed()).isTrue();
        assertThat(backend.liveArrayCount()).isEqualTo(before);
        assertThatThrownBy(t::array).hasMessageContaining("closed");
    }

    @Test
    void guiceModuleBindsTheBackend() {
        var injector = Guice.createInjector(new PyTorchBackendModule());
        TensorBackend b = injector.getInstance(TensorBackend.class);
        assertThat(b).isInstanceOf(DjlBackend.class).isSameAs(injector.getInstance(TensorBackend.class));
        assertThat(b.name()).isEqualTo("pytorch");
    }

    @Test
    void resourcesGivenToTheBackendCloseWithItLatestFirstEvenWhenOneFails() {
        DjlBackend own = new DjlBackend();
        java.util.List<String> closed = new java.util.ArrayList<>();
        own.own(() -> closed.add("first"));
        own.own(() -> {
            closed.add("failing");
            throw new IllegalStateException("boom");
        });
        own.own(() -> closed.add("last"));
        own.close();
        assertThat(closed).containsExactly("last", "failing", "first");
    }
}

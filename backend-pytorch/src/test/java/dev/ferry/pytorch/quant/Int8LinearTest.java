package dev.ferry.pytorch.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.quant.Int8Quantizer;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.DjlTensor;
import dev.ferry.pytorch.nn.Linear;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** One Linear with int8 weights against the same Linear in float32, on a real fixture weight. */
class Int8LinearTest {

    static final String KEY = "model.layers.0.self_attn.q_proj.weight";
    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @Test
    void int8WeightsAreDeclaredAsInt8AndScalesInTheComputeDtype() {
        Linear l = new Linear(backend, 64, 96, true, DType.FLOAT16);
        long before = l.byteSize();
        l.useInt8Weights();
        assertThat(l.tensor("weight").spec()).isEqualTo(TensorSpec.of(DType.INT8, 96, 64));
        assertThat(l.tensor("weight_scale").spec()).isEqualTo(TensorSpec.of(DType.FLOAT16, 96, 1));
        assertThat(l.tensor("bias").spec().dtype()).isEqualTo(DType.FLOAT16);
        assertThat(l.byteSize()).isEqualTo(before - 96 * 64 + 96 * 2); // half of fp16's weight bytes, plus scales
        l.useInt8Weights(); // idempotent
        assertThat(l.ownTensors()).hasSize(3);
    }

    @Test
    void aLoadedLinearCannotBeQuantizedAfterwards() {
        Linear l = new Linear(backend, 2, 2, false, DType.FLOAT32);
        l.tensor("weight").set(backend.floats(new float[4], Device.cpu(), 2, 2));
        assertThatThrownBy(l::useInt8Weights).isInstanceOf(IllegalStateException.class).hasMessageContaining("meta");
    }

    /**
     * The derived bound: each weight moves by at most half its row's scale, so output {@code o} moves by at most
     * {@code scale[o] / 2 · ‖x‖₁} (plus float32 rounding of the two matmuls, far below it here).
     */
    @Test
    void eachOutputMovesByAtMostHalfItsScaleTimesTheInputsL1Norm() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            TensorSpec spec = ckpt.spec(KEY);
            int out = (int) spec.dim(0);
            int in = (int) spec.dim(1);
            Linear fp = new Linear(backend, in, out, false, DType.FLOAT32);
            fp.tensor("weight").set(backend.fromBytes(ckpt.bytes(KEY), spec, Device.cpu()));
            Linear q8 = new Linear(backend, in, out, false, DType.FLOAT32);
            q8.useInt8Weights();
            Int8Quantizer.Quantized q = Int8Quantizer.quantize(ckpt.bytes(KEY), spec.dtype(), out, in, KEY);
            q8.tensor("weight").set(backend.fromBytes(q.values(), TensorSpec.of(DType.INT8, out, in), Device.cpu()));
            ByteBuffer s = ByteBuffer.allocate(out * 4).order(ByteOrder.LITTLE_ENDIAN);
            s.asFloatBuffer().put(q.scales());
            q8.tensor("weight_scale").set(backend.fromBytes(s, TensorSpec.of(DType.FLOAT32, out, 1), Device.cpu()));

            Random r = new Random(1);
            float[] x = new float[3 * in];
            for (int i = 0; i < x.length; i++) {
                x[i] = (float) r.nextGaussian();
            }
            try (DjlTensor input = backend.floats(x, Device.cpu(), 3, in);
                 DjlTensor yf = (DjlTensor) fp.call(input);
                 DjlTensor yq = (DjlTensor) q8.call(input)) {
                float[] a = yf.array().toFloatArray();
                float[] b = yq.array().toFloatArray();
                double worstShare = 0;
                for (int row = 0; row < 3; row++) {
                    double l1 = 0;
                    for (int i = 0; i < in; i++) {
                        l1 += Math.abs(x[row * in + i]);
                    }
                    for (int o = 0; o < out; o++) {
                        double bound = q.scales()[o] / 2 * l1;
                        double err = Math.abs(a[row * out + o] - b[row * out + o]);
                        assertThat(err).as("row %d output %d", row, o).isLessThanOrEqualTo(bound * (1 + 1e-4) + 1e-5);
                        worstShare = Math.max(worstShare, err / bound);
                    }
                }
                // the worst case needs every rounding to push one way; random roundings cancel (about 1/√in of it)
                System.out.printf("int8 Linear %s: largest error is %.3f of the derived bound%n", KEY, worstShare);
                assertThat(worstShare).isGreaterThan(0);
            }
            fp.tensor("weight").release();
            q8.namedTensors().values().forEach(t -> t.release());
        }
    }
}

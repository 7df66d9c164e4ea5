package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.module.Module;
import dev.ferry.core.quant.Int8Quantizer;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.weights.WeightsStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

class QuantizingStoreTest {

    static final int OUT = 6;
    static final int IN = 5;

    /** A block with one int8 Linear ({@code layers.0.proj}, with a bias) and a float norm. */
    static Module tree() {
        Module root = new Module("ToyForCausalLM");
        Module block = root.addChild("layers", new Module("ModuleList")).addChild("0", new Module("ToyDecoderLayer"));
        Module proj = block.addChild("proj", new Module("Linear"));
        proj.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.INT8, OUT, IN)));
        proj.registerParameter("bias", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, OUT)));
        proj.registerParameter("weight_scale", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, OUT, 1)));
        block.addChild("norm", new Module("RMSNorm"))
                .registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, IN)));
        return root;
    }

    static float[] weights() {
        Random r = new Random(5);
        float[] w = new float[OUT * IN];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian();
        }
        return w;
    }

    static ByteBuffer floats(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(v.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b;
    }

    static HostMemoryStore floatCheckpoint() {
        HostMemoryStore s = new HostMemoryStore();
        s.put("layers.0.proj.weight", TensorSpec.of(DType.FLOAT32, OUT, IN), floats(weights()));
        s.put("layers.0.proj.bias", TensorSpec.of(DType.FLOAT32, OUT), floats(new float[OUT]));
        s.put("layers.0.norm.weight", TensorSpec.of(DType.FLOAT32, IN), floats(new float[IN]));
        return s;
    }

    @Test
    void aFloatWeightReadsAsItsInt8ValuesAndScales() {
        try (HostMemoryStore ckpt = floatCheckpoint()) {
            WeightsStore view = QuantizingStore.view(tree(), ckpt);
            Int8Quantizer.Quantized expected = Int8Quantizer.quantize(weights(), OUT, IN);
            assertThat(view.spec("layers.0.proj.weight")).isEqualTo(TensorSpec.of(DType.INT8, OUT, IN));
            assertThat(view.spec("layers.0.proj.weight_scale")).isEqualTo(TensorSpec.of(DType.FLOAT32, OUT, 1));
            assertThat(view.bytes("layers.0.proj.weight")).isEqualTo(expected.values());
            float[] scales = new float[OUT];
            view.bytes("layers.0.proj.weight_scale").order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(scales);
            assertThat(scales).containsExactly(expected.scales());
            assertThat(view.streamsFromFile("layers.0.proj.weight")).isFalse();
        }
    }

    @Test
    void readingTheScaleFirstGivesTheSameBytes() {
        try (HostMemoryStore ckpt = floatCheckpoint()) {
            WeightsStore a = QuantizingStore.view(tree(), ckpt);
            WeightsStore b = QuantizingStore.view(tree(), ckpt);
            ByteBuffer scaleFirst = b.bytes("layers.0.proj.weight_scale");
            assertThat(b.bytes("layers.0.proj.weight")).isEqualTo(a.bytes("layers.0.proj.weight"));
            assertThat(scaleFirst).isEqualTo(a.bytes("layers.0.proj.weight_scale"));
        }
    }

    @Test
    void otherTensorsAreTheCheckpointsOwn() {
        try (HostMemoryStore ckpt = floatCheckpoint()) {
            WeightsStore view = QuantizingStore.view(tree(), ckpt);
            assertThat(view.keys()).containsExactlyInAnyOrder("layers.0.proj.weight", "layers.0.proj.bias",
                    "layers.0.norm.weight", "layers.0.proj.weight_scale");
            assertThat(view.spec("layers.0.norm.weight")).isEqualTo(ckpt.spec("layers.0.norm.weight"));
            assertThat(view.bytes("layers.0.proj.bias")).isEqualTo(ckpt.bytes("layers.0.proj.bias"));
        }
    }

    @Test
    void aCheckpointThatHasTheScalesIsReadAsItIsNeverQuantizedAgain() {
        try (HostMemoryStore ckpt = new HostMemoryStore()) {
            Int8Quantizer.Quantized q = Int8Quantizer.quantize(weights(), OUT, IN);
            ckpt.put("layers.0.proj.weight", TensorSpec.of(DType.INT8, OUT, IN), q.values());
            ckpt.put("layers.0.proj.weight_scale", TensorSpec.of(DType.FLOAT32, OUT, 1), floats(q.scales()));
            assertThat(QuantizingStore.view(tree(), ckpt)).isSameAs(ckpt);
        }
    }

    @Test
    void anInt8WeightWithoutItsScalesIsRefusedNamingBoth() {
        try (HostMemoryStore ckpt = new HostMemoryStore()) {
            ckpt.put("layers.0.proj.weight", TensorSpec.of(DType.INT8, OUT, IN), ByteBuffer.allocate(OUT * IN));
            assertThatThrownBy(() -> QuantizingStore.view(tree(), ckpt))
                    .hasMessageContaining("layers.0.proj.weight").hasMessageContaining("layers.0.proj.weight_scale");
        }
    }
}

package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import ai.onnx.proto.OnnxMl.GraphProto;
import ai.onnx.proto.OnnxMl.ModelProto;
import ai.onnx.proto.OnnxMl.StringStringEntryProto;
import ai.onnx.proto.OnnxMl.TensorProto;
import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.io.ByteArrayOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each bad input is a named error, raised in Java before anything reaches native code. */
class BadInputTest {

    static final Path LLAMA = TestModels.fixture("tiny-llama", "model.onnx");
    static final Device GPU0 = Device.accelerator(0);

    @TempDir
    Path tmp;

    @Test
    void fileThatIsNotOnnx() throws Exception {
        Path f = tmp.resolve("config.onnx");
        Files.copy(TestModels.fixture("tiny-llama", "config.json"), f);
        assertThatThrownBy(() -> OnnxModel.load(f)).isInstanceOf(OnnxModelException.NotOnnx.class)
                .hasMessageContaining("not an ONNX model");
        Path empty = Files.write(tmp.resolve("empty.onnx"), new byte[0]);
        assertThatThrownBy(() -> OnnxModel.load(empty)).isInstanceOf(OnnxModelException.NotOnnx.class);
        Path safetensors = tmp.resolve("weights.onnx");
        Files.copy(TestModels.fixture("tiny-gpt2", "model.safetensors"), safetensors);
        assertThatThrownBy(() -> OnnxModel.load(safetensors)).isInstanceOf(OnnxModelException.NotOnnx.class);
    }

    @Test
    void truncatedFile() throws Exception {
        byte[] all = Files.readAllBytes(LLAMA);
        for (int cut : new int[] {all.length / 2, all.length - 100, 40}) {
            Path f = Files.write(tmp.resolve("cut" + cut + ".onnx"), Arrays.copyOf(all, cut));
            assertThatThrownBy(() -> OnnxModel.load(f)).as("cut at %d", cut)
                    .isInstanceOf(OnnxModelException.Truncated.class).hasMessageContaining("truncated");
        }
    }

    /** The model with its large initializers moved to {@code weights.bin}, as onnx's external-data format. */
    private Path externalise(Path dir) throws Exception {
        ModelProto m = ModelProto.parseFrom(Files.readAllBytes(LLAMA));
        GraphProto.Builder g = m.getGraph().toBuilder();
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        for (int i = 0; i < g.getInitializerCount(); i++) {
            TensorProto t = g.getInitializer(i);
            if (t.getRawData().size() < 4096) {
                continue;
            }
            long offset = data.size();
            t.getRawData().writeTo(data);
            g.setInitializer(i, t.toBuilder().clearRawData().setDataLocation(TensorProto.DataLocation.EXTERNAL)
                    .addExternalData(e("location", "weights.bin")).addExternalData(e("offset", "" + offset))
                    .addExternalData(e("length", "" + t.getRawData().size())).build());
        }
        Files.createDirectories(dir);
        Files.write(dir.resolve("weights.bin"), data.toByteArray());
        Path f = dir.resolve("model.onnx");
        Files.write(f, m.toBuilder().setGraph(g).build().toByteArray());
        return f;
    }

    private static StringStringEntryProto e(String k, String v) {
        return StringStringEntryProto.newBuilder().setKey(k).setValue(v).build();
    }

    @Test
    void externalDataIsReadAndAMissingFileIsNamed() throws Exception {
        Path f = externalise(tmp.resolve("ext"));
        // present: loads, and the partitioned run (resident and offloaded) still gives golden logits
        JsonNode golden = TestModels.json(TestModels.fixture("tiny-llama", "golden.json"));
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model", GPU0);
        map.put("model.layers.2", Device.disk());
        map.put("lm_head", Device.cpu());
        try (OnnxTensor in = Ort.ids(CausalLmFidelityTest.longs(golden.get("input_ids")));
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(OnnxModel.load(f),
                     DeviceMap.of(map), new PreloadRule(Set.of("LlamaDecoderLayer")), CausalLmFidelityTest.OPTIONS);
             OnnxRunResult r = d.run(Map.of("input_ids", in))) {
            assertThat(Ort.maxAbsDiff(r.floats("logits"), CausalLmFidelityTest.floats(golden.get("logits"))))
                    .isLessThanOrEqualTo(1e-4);
        }
        Files.delete(f.resolveSibling("weights.bin"));
        assertThatThrownBy(() -> OnnxModel.load(f)).isInstanceOf(OnnxModelException.MissingExternalData.class)
                .hasMessageContaining("weights.bin");
        Files.write(f.resolveSibling("weights.bin"), new byte[100]);
        assertThatThrownBy(() -> OnnxModel.load(f)).isInstanceOf(OnnxModelException.MissingExternalData.class)
                .hasMessageContaining("has only 100");
    }

    @Test
    void mapNamingScopesTheGraphLacks() {
        OnnxModel model = OnnxModel.load(LLAMA);
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model", GPU0);
        map.put("model.layers.7", Device.cpu());
        map.put("transformer.h.0", Device.cpu());
        assertThatThrownBy(() -> OnnxDispatchedModel.dispatch(model, DeviceMap.of(map), PreloadRule.none(),
                CausalLmFidelityTest.OPTIONS)).isInstanceOf(OnnxModelException.UnknownScope.class)
                .hasMessageContaining("[model.layers.7, transformer.h.0]");
    }

    @Test
    void providerTheBuildLacks() {
        assertThat(ExecutionProvider.cpu().isAvailable()).isTrue();
        assertThat(ExecutionProvider.cuda(0).isAvailable()).isFalse(); // the CPU jar: probed, not assumed
        assertThat(ExecutionProvider.tensorRt(0).isAvailable()).isFalse();
        Map<String, Device> map = Map.of("", GPU0);
        // default devices: accelerator 0 is CUDA 0
        assertThatThrownBy(() -> OnnxDispatchedModel.dispatch(OnnxModel.load(LLAMA),
                DeviceMap.of(map), PreloadRule.none(), OnnxOptions.defaults()))
                .isInstanceOf(OnnxModelException.ProviderUnavailable.class)
                .hasMessageContaining("CUDAExecutionProvider:0");
        OnnxOptions trt = OnnxOptions.defaults().withDevices(OnnxDevices.of(Map.of(0, ExecutionProvider.tensorRt(0))));
        assertThatThrownBy(() -> OnnxDispatchedModel.dispatch(OnnxModel.load(LLAMA),
                DeviceMap.of(map), PreloadRule.none(), trt))
                .isInstanceOf(OnnxModelException.ProviderUnavailable.class).hasMessageContaining("Tensorrt");
    }

    @Test
    void mapLeavingTensorsWithoutADevice() {
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model.layers.0", GPU0);
        map.put("model.layers.1", Device.cpu());
        assertThatThrownBy(() -> OnnxDispatchedModel.dispatch(OnnxModel.load(LLAMA), DeviceMap.of(map),
                PreloadRule.none(), CausalLmFidelityTest.OPTIONS))
                .isInstanceOf(OnnxModelException.InvalidPlan.class)
                .hasMessageContaining("gives no device to 21 tensor(s)")
                .hasMessageContaining("model.embed_tokens.weight");
    }

    @Test
    void planThatWouldCutAPreloadedUnit() {
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model", GPU0);
        map.put("model.layers.1.self_attn", GPU0);
        map.put("model.layers.1.mlp", Device.disk());
        map.put("lm_head", GPU0);
        assertThatThrownBy(() -> OnnxDispatchedModel.dispatch(OnnxModel.load(LLAMA),
                DeviceMap.of(map), new PreloadRule(Set.of("LlamaDecoderLayer")), CausalLmFidelityTest.OPTIONS))
                .isInstanceOf(OnnxModelException.InvalidPlan.class)
                .hasMessageContaining("splits preload unit 'model.layers.1' (LlamaDecoderLayer)")
                .hasCauseInstanceOf(IllegalArgumentException.class); // the core's planner said so
    }
}

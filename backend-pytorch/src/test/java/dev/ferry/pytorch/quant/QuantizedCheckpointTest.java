package dev.ferry.pytorch.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.module.Module;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.dispatch.QuantizedCheckpointWriter;
import dev.ferry.core.quant.QuantizedLinears;
import dev.ferry.core.dispatch.QuantizingStore;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import dev.ferry.core.weights.HostMemoryStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** What {@code ferry quantize} writes ({@link QuantizedCheckpointWriter}), and loading it. */
class QuantizedCheckpointTest {

    static DjlBackend backend;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    /** Writes the int8 checkpoint of {@code fixture} into {@code out}, as {@code ferry quantize} does. */
    static QuantizedCheckpointWriter.Summary quantize(String fixture, Path out, DjlBackend backend) {
        Path dir = Fixtures.model(fixture);
        CausalLM lm = ModelFamilies.build(ModelConfig.read(dir), backend, DType.FLOAT32,
                QuantizationScheme.INT8);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            return QuantizedCheckpointWriter.write(lm, ModelFamilies.checkpointView(lm, ckpt), dir, out,
                    QuantizationScheme.INT8);
        }
    }

    static float[][] logits(Path dir, QuantizationScheme quantize, String fixture) throws Exception {
        CausalLM lm = ModelFamilies.build(ModelConfig.read(dir), backend, DType.FLOAT32, quantize);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            ModelFamilies.load(lm, ModelFamilies.checkpointView(lm, ckpt), backend, Device.cpu());
            float[][] out = new Generator(lm, backend, Device.cpu()).logits(Int8FidelityTest.prompt(fixture));
            lm.namedTensors().values().forEach(s -> s.release());
            return out;
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-llama", "tiny-qwen3-moe", "tiny-phi3"})
    void aWrittenCheckpointLoadsToTheLogitsOfQuantizingAtLoad(String fixture) throws Exception {
        Path out = tmp.resolve("q");
        quantize(fixture, out, backend);
        float[][] atLoad = logits(Fixtures.model(fixture), QuantizationScheme.INT8, fixture);
        float[][] written = logits(out, null, fixture); // config.json says int8: no option needed
        assertThat(written).isDeepEqualTo(atLoad);
    }

    @Test
    void theFolderHoldsInt8WeightsFloatScalesTheConfigEntryAndTheTokenizer() throws Exception {
        Path out = tmp.resolve("q");
        QuantizedCheckpointWriter.Summary s = quantize("tiny-llama", out, backend);
        assertThat(s.quantizedWeights()).isEqualTo(28);
        assertThat(s.files()).contains("model.safetensors", "config.json", "tokenizer.json", "generation_config.json");
        assertThat(out.resolve("tokenizer.json")).hasSameBinaryContentAs(Fixtures.model("tiny-llama")
                .resolve("tokenizer.json"));
        var config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertThat(config.at("/quantization_config/ferry_scheme").asText()).isEqualTo("int8");
        assertThat(config.at("/quantization_config/ignore").toString()).contains("lm_head");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(out)) {
            assertThat(ckpt.spec("model.layers.2.mlp.up_proj.weight").dtype()).isEqualTo(DType.INT8);
            assertThat(ckpt.spec("model.layers.2.mlp.up_proj.weight_scale").shape()).containsExactly(128, 1);
            assertThat(ckpt.spec("model.layers.2.mlp.up_proj.weight_scale").dtype()).isEqualTo(DType.FLOAT32);
            assertThat(ckpt.spec("lm_head.weight").dtype()).isEqualTo(DType.FLOAT32);
            assertThat(ckpt.spec("model.embed_tokens.weight").dtype()).isEqualTo(DType.FLOAT32);
            assertThat(ckpt.keys().stream().filter(k -> k.endsWith("weight_scale"))).hasSize(28);
        }
        assertThat(s.writtenBytes()).isLessThan(s.sourceBytes());
    }

    @Test
    void loadingAQuantizedCheckpointNeverQuantizesAgain() {
        Path out = tmp.resolve("q");
        quantize("tiny-llama", out, backend);
        CausalLM lm = ModelFamilies.build(ModelConfig.read(out), backend);
        assertThat(QuantizedLinears.quantizedWeights(lm)).hasSize(28);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(out)) {
            assertThat(QuantizingStore.view(lm, ckpt)).isSameAs(ckpt);
            ModelFamilies.load(lm, ckpt, backend, Device.cpu());
            Module up = lm.find("model.layers.1.mlp.up_proj");
            assertThat(up.tensor("weight").value().toBytes()).isEqualTo(ckpt.bytes("model.layers.1.mlp.up_proj.weight"));
            lm.namedTensors().values().forEach(s -> s.release());
        }
    }

    @Test
    void aNonEmptyOutputFolderIsRefusedAndLeftUntouched() throws Exception {
        Path out = Files.createDirectories(tmp.resolve("mine"));
        Files.writeString(out.resolve("notes.txt"), "keep me");
        assertThatThrownBy(() -> quantize("tiny-llama", out, backend)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining(out.toString()).hasMessageContaining("notes.txt").hasMessageContaining("empty");
        try (var files = Files.list(out)) {
            assertThat(files.map(p -> p.getFileName().toString()).toList()).containsExactly("notes.txt");
        }
        assertThat(Files.readString(out.resolve("notes.txt"))).isEqualTo("keep me");
    }

    @Test
    void anOutputThatIsAFileIsRefused() throws Exception {
        Path file = Files.writeString(tmp.resolve("model.safetensors"), "x");
        assertThatThrownBy(() -> quantize("tiny-llama", file, backend)).hasMessageContaining("not a folder");
        assertThat(Files.readString(file)).isEqualTo("x");
    }

    @Test
    void anEmptyOutputFolderIsWrittenInto() throws Exception {
        Path out = Files.createDirectories(tmp.resolve("empty"));
        quantize("tiny-llama", out, backend);
        assertThat(out.resolve("model.safetensors")).isRegularFile();
    }

    @Test
    void anAlreadyQuantizedCheckpointIsRefusedNamingItsConfig() {
        Path once = tmp.resolve("once");
        quantize("tiny-llama", once, backend);
        CausalLM lm = ModelFamilies.build(ModelConfig.read(once), backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(once)) {
            assertThatThrownBy(() -> QuantizedCheckpointWriter.write(lm, ckpt, once, tmp.resolve("twice"),
                    QuantizationScheme.INT8)).hasMessageContaining("quantization_config")
                    .hasMessageContaining("config.json");
        }
        assertThat(tmp.resolve("twice")).doesNotExist();
    }

    @Test
    void anInt8CheckpointIntoAnUnquantizedTreeIsANamedError() {
        Path out = tmp.resolve("q");
        quantize("tiny-llama", out, backend);
        CausalLM plain = ModelFamilies.build(ModelConfig.read(Fixtures.model("tiny-llama")), backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(out)) {
            assertThatThrownBy(() -> ModelFamilies.load(plain, ckpt, backend, Device.cpu()))
                    .hasMessageContaining("int8").hasMessageContaining(".weight'");
        }
        plain.namedTensors().values().forEach(s -> s.release());
    }

    @Test
    void aTensorTheModelNeedsThatTheSourceLacksIsNamedAndNothingIsWritten() {
        Path dir = Fixtures.model("tiny-llama");
        CausalLM lm = ModelFamilies.build(ModelConfig.read(dir), backend, DType.FLOAT32, QuantizationScheme.INT8);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            List<String> keep = ckpt.keys().stream().filter(k -> !k.equals("model.layers.1.mlp.up_proj.weight")).toList();
            try (HostMemoryStore partial = HostMemoryStore.copyOf(ckpt, keep)) {
                assertThatThrownBy(() -> QuantizedCheckpointWriter.write(lm, partial, dir, tmp.resolve("out"),
                        QuantizationScheme.INT8)).hasMessageContaining("model.layers.1.mlp.up_proj.weight");
            }
        }
        assertThat(tmp.resolve("out")).doesNotExist();
    }

    @Test
    void aNonFiniteWeightIsNamedAndWhatWasWrittenIsRemoved() {
        Path dir = Fixtures.model("tiny-llama");
        CausalLM lm = ModelFamilies.build(ModelConfig.read(dir), backend, DType.FLOAT32, QuantizationScheme.INT8);
        String bad = "model.layers.2.self_attn.v_proj.weight";
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir);
             HostMemoryStore broken = HostMemoryStore.copyOf(ckpt)) {
            ByteBuffer b = ByteBuffer.allocate((int) ckpt.spec(bad).byteSize()).order(ByteOrder.LITTLE_ENDIAN);
            b.put(ckpt.bytes(bad).duplicate()).flip();
            b.putFloat(4 * 70, Float.POSITIVE_INFINITY); // one element past the first row
            broken.put(bad, ckpt.spec(bad), b);
            assertThatThrownBy(() -> QuantizedCheckpointWriter.write(lm, broken, dir, tmp.resolve("out"),
                    QuantizationScheme.INT8)).hasMessageContaining(bad).hasMessageContaining("non-finite");
        }
        assertThat(tmp.resolve("out")).doesNotExist();
    }

    @Test
    void int8OnAModelWithNoLinearInItsBlocksIsANamedError() {
        ModelConfig gpt2 = ModelConfig.read(Fixtures.model("tiny-gpt2"));
        assertThatThrownBy(() -> ModelFamilies.build(gpt2, backend, DType.FLOAT32, QuantizationScheme.INT8))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("GPT2LMHeadModel")
                .hasMessageContaining("Conv1D");
    }

    @Test
    void askingForInt8OnAnInt8CheckpointIsFineAndForNothingStillLoadsInt8() {
        Path out = tmp.resolve("q");
        quantize("tiny-llama", out, backend);
        ModelConfig config = ModelConfig.read(out);
        assertThat(QuantizedLinears.quantizedWeights(ModelFamilies.build(config, backend, DType.FLOAT32,
                QuantizationScheme.INT8))).hasSize(28);
        assertThat(QuantizedLinears.quantizedWeights(ModelFamilies.build(config, backend, DType.FLOAT32, null)))
                .hasSize(28);
        assertThat(List.of(QuantizationScheme.values())).containsExactly(QuantizationScheme.INT8);
    }
}

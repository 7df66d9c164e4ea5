package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.HostMemoryStore;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.SafetensorsWriter;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Family variants and bad input: unknown model_type, missing tensors, wrong shapes, bf16 checkpoints. */
class ModelFamiliesTest {

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

    static ModelConfig llamaConfigWith(String key, String value) {
        ModelConfig c = ModelConfig.read(Fixtures.model("tiny-llama"));
        ObjectNode json = ((ObjectNode) c.json()).deepCopy();
        json.put(key, value);
        return new ModelConfig(json);
    }

    @Test
    void unknownModelTypeIsNamed() {
        assertThatThrownBy(() -> ModelFamilies.build(llamaConfigWith("model_type", "mamba"), backend))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("unknown model_type 'mamba'").hasMessageContaining("llama");
    }

    @Test
    void mistralAndQwen2UseTheirClassNamesAndQwen2HasQkvBias() {
        CausalLM mistral = ModelFamilies.build(llamaConfigWith("model_type", "mistral"), backend);
        assertThat(mistral.className()).isEqualTo("MistralForCausalLM");
        assertThat(mistral.find("model.layers.0").className()).isEqualTo("MistralDecoderLayer");
        assertThat(mistral.find("model.layers.0.self_attn.q_proj").ownTensors()).containsOnlyKeys("weight");

        CausalLM qwen = ModelFamilies.build(llamaConfigWith("model_type", "qwen2"), backend);
        assertThat(qwen.className()).isEqualTo("Qwen2ForCausalLM");
        assertThat(qwen.find("model.norm").className()).isEqualTo("Qwen2RMSNorm");
        assertThat(qwen.find("model.rotary_emb").className()).isEqualTo("Qwen2RotaryEmbedding");
        for (String p : new String[] {"q_proj", "k_proj", "v_proj"}) {
            assertThat(qwen.find("model.layers.1.self_attn." + p).ownTensors()).containsOnlyKeys("weight", "bias");
        }
        assertThat(qwen.find("model.layers.1.self_attn.o_proj").ownTensors()).containsOnlyKeys("weight");
    }

    @Test
    void gpt2LmHeadIsOneSlotWithTheTokenEmbedding() {
        CausalLM gpt2 = ModelFamilies.build(Fixtures.model("tiny-gpt2"), backend);
        assertThat(gpt2.find("lm_head").tensor("weight")).isSameAs(gpt2.find("transformer.wte").tensor("weight"));
        assertThat(gpt2.tiedTensorGroups()).containsExactly(java.util.List.of("transformer.wte.weight", "lm_head.weight"));
    }

    @Test
    void missingTensorsAreAllNamed() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            HostMemoryStore partial = HostMemoryStore.copyOf(ckpt);
            partial.remove("model.layers.2.mlp.up_proj.weight");
            partial.remove("lm_head.weight");
            CausalLM model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
            assertThatThrownBy(() -> ModelFamilies.load(model, partial, backend, Device.cpu()))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("2 tensor(s)")
                    .hasMessageContaining("model.layers.2.mlp.up_proj.weight float32[128, 64]")
                    .hasMessageContaining("lm_head.weight");
        }
    }

    @Test
    void wrongShapeNamesTheTensorAndBothShapes() {
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            HostMemoryStore bad = HostMemoryStore.copyOf(ckpt);
            bad.put("model.norm.weight", TensorSpec.of(DType.FLOAT32, 32), java.nio.ByteBuffer.allocate(128));
            CausalLM model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
            assertThatThrownBy(() -> ModelFamilies.load(model, bad, backend, Device.cpu()))
                    .hasMessageContaining("'model.norm.weight'").hasMessageContaining("[32]")
                    .hasMessageContaining("[64]");
        }
    }

    @Test
    void aBfloat16CheckpointRunsConvertedToFloat32() throws Exception {
        Path dir = Files.createDirectories(tmp.resolve("tiny-llama-bf16"));
        ObjectNode config = ((ObjectNode) ModelConfig.read(Fixtures.model("tiny-llama")).json()).deepCopy();
        config.put("dtype", "bfloat16");
        Files.writeString(dir.resolve("config.json"), config.toString());
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"))) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String k : ckpt.keys()) {
                w.add(k, ckpt.spec(k).withDType(DType.BFLOAT16),
                        DTypeConversion.convert(ckpt.bytes(k), DType.FLOAT32, DType.BFLOAT16));
            }
            w.write(dir.resolve("model.safetensors"));
        }
        CausalLM model = ModelFamilies.build(dir, backend);
        assertThat(model.find("lm_head").tensor("weight").spec().dtype()).isEqualTo(DType.FLOAT32);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            assertThat(ckpt.spec("lm_head.weight").dtype()).isEqualTo(DType.BFLOAT16);
            ModelFamilies.load(model, ckpt, backend, Device.cpu());
            Golden golden = Golden.of("tiny-llama");
            Generator gen = new Generator(model, backend, Device.cpu());
            double diff = golden.maxAbsDiff(gen.logits(golden.inputIds()));
            System.out.printf("tiny-llama as bf16: max |logit - golden| = %.3g%n", diff);
            assertThat(diff).isLessThan(0.2); // bf16 keeps ~3 significant digits of each weight (measured 0.088)
            assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8))).hasSize(8);
        }
    }

    @Test
    void unloadedWeightsAreAClearErrorAtForward() {
        CausalLM model = ModelFamilies.build(Fixtures.model("tiny-gpt2"), backend);
        Module ln = model.find("transformer.ln_f");
        assertThat(ln.tensor("weight").isMaterialised()).isFalse();
        Generator gen = new Generator(model, backend, Device.cpu());
        assertThatThrownBy(() -> gen.logits(new long[] {1, 2}))
                .hasMessageContaining("transformer.wte.weight").hasMessageContaining("not loaded");
    }
}

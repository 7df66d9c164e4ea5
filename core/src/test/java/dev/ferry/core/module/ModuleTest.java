package dev.ferry.core.module;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.hook.Hooks;
import dev.ferry.core.hook.ModelHook;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.ModelForTest;
import dev.ferry.core.testing.TestTensor;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The module tree: names, traversal, parameters and buffers, tied tensors, calling through hooks. */
class ModuleTest {

    private static Module tree() {
        Module root = new Module("Root");
        Module enc = root.addChild("encoder", new Module("Encoder"));
        Module layer = enc.addChild("layer", new Module("Layer"));
        layer.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT16, 4, 2)));
        layer.registerBuffer("mask", TensorSlot.buffer(TensorSpec.of(DType.BOOL, 4), true));
        layer.registerBuffer("inv_freq", TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, 2), false));
        Module head = root.addChild("head", new Module("Head"));
        head.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT16, 4, 2)));
        head.registerBuffer("ids", TensorSlot.buffer(TensorSpec.of(DType.INT64, 3), true));
        return root;
    }

    @Test
    void namePathsFollowTheParentsEvenWhenSubtreesAreBuiltFirst() {
        Module block = new Module("Block");
        Module inner = block.addChild("attn", new Module("Attention"));
        Module root = new Module("Model");
        root.addChild("layers", new Module("ModuleList")).addChild("0", block);
        assertThat(inner.name()).isEqualTo("layers.0.attn");
        assertThat(root.find("layers.0.attn")).isSameAs(inner);
        assertThat(root.find("layers.1")).isNull();
    }

    @Test
    void modulesAreListedDepthFirstInRegistrationOrder() {
        assertThat(tree().modules()).extracting(Module::name)
                .containsExactly("", "encoder", "encoder.layer", "head");
    }

    @Test
    void namedTensorsAreRelativeToTheModuleAndCanSkipBuffers() {
        Module root = tree();
        assertThat(root.namedTensors().keySet()).containsExactly("encoder.layer.weight", "encoder.layer.mask",
                "encoder.layer.inv_freq", "head.weight", "head.ids");
        assertThat(root.find("encoder").namedTensors(false, true, false).keySet()).containsExactly("layer.weight");
        assertThat(root.find("encoder").namedTensors(true, false, false)).isEmpty();
    }

    @Test
    void stateDictHasPersistentBuffersOnly() {
        assertThat(tree().stateDict().keySet()).containsExactly("encoder.layer.weight", "encoder.layer.mask",
                "head.weight", "head.ids");
    }

    @Test
    void byteSizeCountsEveryDtypeByItsWidth() {
        // fp16 4x2 = 16, bool 4 = 4, fp32 2 = 8, fp16 4x2 = 16, int64 3 = 24
        assertThat(tree().byteSize()).isEqualTo(68);
    }

    @Test
    void tiedParametersAreOneTensorListedOnceButNamedTwiceInTheStateDict() {
        Module root = tree();
        ModuleTreeJson.tie(root, Set.of(new java.util.LinkedHashSet<>(List.of("encoder.layer.weight", "head.weight"))));
        assertThat(root.find("head").tensor("weight")).isSameAs(root.find("encoder.layer").tensor("weight"));
        assertThat(root.namedTensors().keySet()).doesNotContain("head.weight");
        assertThat(root.stateDict().keySet()).contains("head.weight", "encoder.layer.weight");
        assertThat(root.tiedTensorGroups()).containsExactly(List.of("encoder.layer.weight", "head.weight"));
        assertThat(root.byteSize()).isEqualTo(52);
    }

    @Test
    void tyingTensorsOfDifferentShapesIsRejectedNamingBoth() {
        Module root = tree();
        root.find("head").replaceTensor("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT16, 2, 2)));
        assertThatThrownBy(() -> ModuleTreeJson.tie(root,
                Set.of(new java.util.LinkedHashSet<>(List.of("encoder.layer.weight", "head.weight")))))
                .hasMessageContaining("head.weight").hasMessageContaining("encoder.layer.weight");
    }

    @Test
    void aNameUsedTwiceIsRejected() {
        Module root = tree();
        assertThatThrownBy(() -> root.addChild("head", new Module("Other"))).hasMessageContaining("head");
        assertThatThrownBy(() -> root.find("head").registerBuffer("weight",
                TensorSlot.buffer(TensorSpec.of(DType.FLOAT32, 1), true))).hasMessageContaining("head.weight");
    }

    @Test
    void aSlotRejectsATensorOfAnotherShapeAndClosesWhatItReplaces() {
        TestBackend backend = new TestBackend(0);
        TensorSlot slot = TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 2));
        TestTensor first = backend.tensor(Device.cpu(), new long[] {2}, 1, 2);
        slot.set(first);
        assertThatThrownBy(() -> slot.set(backend.tensor(Device.cpu(), new long[] {3}, 1, 2, 3)))
                .hasMessageContaining("float32[3]").hasMessageContaining("float32[2]");
        slot.set(backend.tensor(Device.cpu(), new long[] {2}, 3, 4));
        assertThat(first.isClosed()).isTrue();
        slot.release();
        assertThat(slot.isMaterialised()).isFalse();
    }

    @Test
    void callRunsTheHookAroundTheForward() {
        TestBackend backend = new TestBackend(0);
        ModelForTest m = new ModelForTest(backend, 1);
        StringBuilder log = new StringBuilder();
        Hooks.add(m, new ModelHook() {
            @Override
            public Object[] preForward(Module module, Object[] args) {
                log.append("pre ");
                return args;
            }

            @Override
            public Object postForward(Module module, Object output) {
                log.append("post");
                return output;
            }
        });
        m.call(backend.tensor(Device.cpu(), new long[] {1, 3}, 1, 2, 3));
        assertThat(log).hasToString("pre post");
    }

    @Test
    void aModuleWithoutForwardSaysWhich() {
        assertThatThrownBy(() -> tree().find("head").call()).isInstanceOf(UnsupportedOperationException.class)
                .hasMessageContaining("head").hasMessageContaining("Head");
    }

    @Test
    void fixtureTreesHaveEveryModuleOfTransformers() {
        Module llama = ModuleTreeJson.read(Fixtures.model("tiny-llama").resolve("module_tree.json"));
        assertThat(llama.modules()).hasSize(59);
        assertThat(llama.find("model.layers.3.self_attn.k_proj").tensor("weight").spec())
                .isEqualTo(TensorSpec.of(DType.FLOAT32, 32, 64));
        assertThat(llama.find("model.rotary_emb").className()).isEqualTo("LlamaRotaryEmbedding");
        Module gpt2 = ModuleTreeJson.read(Fixtures.model("tiny-gpt2").resolve("module_tree.json"),
                Set.of(Set.of("transformer.wte.weight", "lm_head.weight")));
        assertThat(gpt2.tiedTensorGroups()).hasSize(1);
    }
}

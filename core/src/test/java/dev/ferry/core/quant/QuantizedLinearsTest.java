package dev.ferry.core.quant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.ModuleTreeJson;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.TensorSpec;
import dev.ferry.core.testing.Fixtures;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The rule, on transformers' own module trees of the fixtures (module_tree.json). */
class QuantizedLinearsTest {

    private static List<String> targetNames(String fixture) {
        Module root = ModuleTreeJson.read(Fixtures.model(fixture).resolve("module_tree.json"));
        return QuantizedLinears.targets(root).stream().map(Module::name).toList();
    }

    @Test
    void llamaQuantizesTheSevenProjectionsOfEachDecoderLayerAndNothingElse() {
        List<String> names = targetNames("tiny-llama");
        assertThat(names).hasSize(4 * 7);
        assertThat(names).contains("model.layers.0.self_attn.q_proj", "model.layers.3.mlp.down_proj");
        assertThat(names).allMatch(n -> n.startsWith("model.layers."));
        assertThat(names).doesNotContain("lm_head", "model.embed_tokens");
    }

    @Test
    void phi3sFusedProjectionsAreQuantizedWhole() {
        assertThat(targetNames("tiny-phi3")).contains("model.layers.0.self_attn.qkv_proj",
                "model.layers.0.mlp.gate_up_proj", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj");
    }

    @Test
    void aLinearOutsideTheBlocksOrSharingItsWeightIsNotATarget() {
        Module root = new Module("ToyForCausalLM");
        Module layers = root.addChild("layers", new Module("ModuleList"));
        Module block = layers.addChild("0", new Module("ToyDecoderLayer"));
        Module proj = block.addChild("proj", new Module("Linear"));
        proj.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 4, 4)));
        Module tied = block.addChild("tied", new Module("Linear"));
        Module head = root.addChild("lm_head", new Module("Linear"));
        TensorSlot shared = TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 4, 4));
        tied.registerParameter("weight", shared);
        head.registerParameter("weight", shared);
        Module norm = block.addChild("norm", new Module("RMSNorm"));
        norm.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 4)));
        assertThat(QuantizedLinears.targets(root)).containsExactly(proj);
    }

    @Test
    void aModuleIsQuantizedWhenItsWeightIsInt8WithScales() {
        Module m = new Module("Linear");
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.INT8, 3, 2)));
        assertThat(QuantizedLinears.isQuantized(m)).isFalse();
        m.registerParameter("weight_scale", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 3, 1)));
        assertThat(QuantizedLinears.isQuantized(m)).isTrue();
        Module root = new Module("Root");
        root.addChild("p", m);
        assertThat(QuantizedLinears.quantizedWeights(root)).containsEntry("p.weight", "p.weight_scale").hasSize(1);
    }
}

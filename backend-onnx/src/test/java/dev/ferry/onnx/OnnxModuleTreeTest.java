package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

class OnnxModuleTreeTest {

    /** name → class of module_tree.json, and "module.local" → shape for parameters. */
    private static Map<String, String> classes(JsonNode tree) {
        Map<String, String> out = new TreeMap<>();
        tree.forEach(m -> out.put(m.get("name").asText(), m.get("class").asText()));
        return out;
    }

    private static Map<String, List<Long>> params(JsonNode tree) {
        Map<String, List<Long>> out = new TreeMap<>();
        tree.forEach(m -> m.get("params").fields().forEachRemaining(p -> {
            List<Long> shape = new ArrayList<>();
            p.getValue().get("shape").forEach(d -> shape.add(d.asLong()));
            String mod = m.get("name").asText();
            out.put(mod.isEmpty() ? p.getKey() : mod + "." + p.getKey(), shape);
        }));
        return out;
    }

    private static Map<String, List<Long>> params(Module root) {
        Map<String, List<Long>> out = new TreeMap<>();
        root.visit(m -> m.ownTensors().forEach((k, s) -> {
            if (s.isParameter()) {
                out.put(m.name().isEmpty() ? k : m.name() + "." + k,
                        Arrays.stream(s.spec().shape()).boxed().toList());
            }
        }));
        return out;
    }

    private static Map<String, String> classes(Module root) {
        Map<String, String> out = new TreeMap<>();
        root.visit(m -> out.put(m.name(), m.className()));
        return out;
    }

    @Test
    void tinyLlamaTreeMatchesTransformers() {
        OnnxModuleTree tree = OnnxModuleTree.build(OnnxModel.load(TestModels.fixture("tiny-llama", "model.onnx")));
        JsonNode expected = TestModels.json(TestModels.fixture("tiny-llama", "module_tree.json"));
        assertThat(tree.fromMetadata()).isTrue();
        Map<String, String> want = classes(expected);
        Map<String, String> got = classes(tree.root());
        // every module has ops in the export: names and classes agree exactly
        assertThat(got).isEqualTo(want);
        // every parameter, with PyTorch's shape (Linear weights come back from their folded transposes,
        // the RMSNorm weights the exporter stored once come back per module)
        assertThat(params(tree.root())).isEqualTo(params(expected));
        assertThat(tree.tensorSources().get("model.layers.0.self_attn.k_proj.weight").transposed()).isTrue();
        // the rotary buffers were folded into a constant by the exporter: no tensor to point at
        assertThat(tree.module("model.rotary_emb").ownTensors()).isEmpty();
    }

    @Test
    void tinyGpt2TreeMatchesTransformersExceptWhatTheExportDropped() {
        OnnxModuleTree tree = OnnxModuleTree.build(OnnxModel.load(TestModels.fixture("tiny-gpt2", "model.onnx")));
        JsonNode expected = TestModels.json(TestModels.fixture("tiny-gpt2", "module_tree.json"));
        Map<String, String> want = classes(expected);
        Map<String, String> got = classes(tree.root());
        // Dropout modules run no op in an eval-mode export, so the graph has no trace of them
        Map<String, String> dropouts = new TreeMap<>(want);
        dropouts.keySet().removeAll(got.keySet());
        assertThat(dropouts.values()).containsOnly("Dropout");
        assertThat(dropouts).hasSize(1 + 4 * 3);
        want.keySet().removeAll(dropouts.keySet());
        assertThat(got).isEqualTo(want);

        Map<String, List<Long>> wantParams = params(expected);
        Map<String, List<Long>> gotParams = params(tree.root());
        // every recovered parameter has PyTorch's shape; tied wte/lm_head share one slot
        gotParams.forEach((k, v) -> assertThat(wantParams).containsEntry(k, v));
        Module wte = tree.module("transformer.wte");
        Module lmHead = tree.module("lm_head");
        assertThat(wte.tensor("weight")).isSameAs(lmHead.tensor("weight"));
        // Conv1D biases are all zero in this random checkpoint: the exporter folded the additions away
        Set<String> missing = new TreeSet<>(wantParams.keySet());
        missing.removeAll(gotParams.keySet());
        assertThat(missing).allMatch(n -> n.endsWith(".bias") && n.contains(".h."));
        assertThat(tree.unresolvedTensors()).containsExactlyInAnyOrderElementsOf(missing);
    }

    @Test
    void minilmScopesComeFromNodeNames() {
        OnnxModuleTree tree = OnnxModuleTree.build(OnnxModel.load(TestModels.minilm()));
        assertThat(tree.fromMetadata()).isFalse();
        Module q = tree.module("encoder.layer.0.attention.self.query");
        assertThat(q).isNotNull();
        assertThat(q.className()).isEqualTo(OnnxModuleTree.UNKNOWN_CLASS);
        assertThat(q.ownTensors()).containsKeys("weight", "bias");
        assertThat(q.tensor("weight").spec().shape()).containsExactly(384, 384);
        assertThat(tree.root().find("encoder.layer").children()).hasSize(6);
        Map<String, TensorSlot> all = new LinkedHashMap<>(tree.root().namedTensors());
        assertThat(all).containsKeys("embeddings.word_embeddings.weight", "encoder.layer.5.output.LayerNorm.bias");
        // 6 layers x (4 attention Linear + 2 MLP Linear) weights and biases + 2 x 2 LayerNorm, embeddings
        assertThat(all.keySet().stream().filter(k -> k.startsWith("encoder.layer.3."))).hasSize(16);
    }
}

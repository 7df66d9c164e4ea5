package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession.SessionOptions.OptLevel;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.nio.file.Path;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The int8 all-MiniLM-L6-v2 of langchain4j's {@code -q} jar, a real-world export: onnxruntime's dynamic quantisation
 * ({@code DynamicQuantizeLinear}, {@code MatMulInteger}, {@code DequantizeLinear}), no scope metadata, and
 * {@code value_info} entries with a type and no shape.
 */
class QuantizedExportTest {

    static final Device GPU0 = Device.accelerator(0);
    static Path file;
    static OnnxModel model;
    static OnnxTensor ids;
    static OnnxTensor mask;
    static OnnxTensor types;
    static Map<String, OnnxTensor> inputs;

    @BeforeAll
    static void load() throws OrtException {
        file = TestModels.minilmQuantized();
        model = OnnxModel.load(file);
        ids = MiniLmEmbeddingTest.tensor(MiniLmEmbeddingTest.IDS);
        mask = MiniLmEmbeddingTest.tensor(MiniLmEmbeddingTest.MASK);
        types = MiniLmEmbeddingTest.tensor(new long[2][11]);
        inputs = Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types);
    }

    @AfterAll
    static void close() {
        ids.close();
        mask.close();
        types.close();
    }

    static float[][] pooledNormalised(float[] hidden) {
        float[][] e = MiniLmEmbeddingTest.meanPool(hidden, MiniLmEmbeddingTest.MASK, 384);
        for (float[] v : e) {
            double n = 0;
            for (float x : v) {
                n += x * x;
            }
            for (int k = 0; k < v.length; k++) {
                v[k] = (float) (v[k] / Math.sqrt(n));
            }
        }
        return e;
    }

    static double minCosine(float[] a, float[] b) {
        float[][] ea = pooledNormalised(a);
        float[][] eb = pooledNormalised(b);
        double min = 1;
        for (int i = 0; i < ea.length; i++) {
            min = Math.min(min, Ort.cosine(ea[i], eb[i]));
        }
        return min;
    }

    static final OnnxOptions NO_OPT = CausalLmFidelityTest.OPTIONS.withOptimizationLevel(OptLevel.NO_OPT);

    static float[] dispatched(Map<String, Device> map, OnnxOptions options) {
        try (OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(model, DeviceMap.of(map), PreloadRule.none(),
                options);
             OnnxRunResult r = d.run(inputs)) {
            return r.floats("last_hidden_state");
        }
    }

    static Map<String, Device> layers(Device... perLayer) {
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("embeddings", GPU0);
        for (int i = 0; i < perLayer.length; i++) {
            map.put("encoder.layer." + i, perLayer[i]);
        }
        return map;
    }

    @Test
    void everyInitializerBelongsToAModule() {
        OnnxModuleTree tree = OnnxModuleTree.build(model);
        IdentityHashMap<TensorSlot, Boolean> seen = new IdentityHashMap<>();
        long treeBytes = 0;
        for (TensorSlot s : tree.root().namedTensors().values()) {
            if (seen.put(s, true) == null) {
                treeBytes += s.spec().byteSize();
            }
        }
        long graphBytes = model.initializerNames().stream().mapToLong(model::byteSize).sum();

        assertThat(treeBytes).isEqualTo(graphBytes);
        assertThat(tree.module("encoder.layer.0.attention.self.query").ownTensors())
                .containsKeys("weight_quantized", "weight_scale", "weight_zero_point", "bias");
    }

    @Test
    void quantizedWeightsAreParametersSoOffloadingALayerTakesThem() {
        OnnxModuleTree tree = OnnxModuleTree.build(model);

        assertThat(tree.module("encoder.layer.0.intermediate.dense").ownTensors().get("weight_quantized")
                .isParameter()).isTrue();
    }

    static final Map<String, Map<String, Device>> MAPS = new LinkedHashMap<>();

    static {
        Device cpu = Device.cpu();
        Device disk = Device.disk();
        MAPS.put("split after layer 0", layers(GPU0, cpu, cpu, cpu, cpu, cpu));
        MAPS.put("every layer on disk", layers(disk, disk, disk, disk, disk, disk));
        MAPS.put("mixed map", layers(GPU0, disk, GPU0, cpu, disk, GPU0));
    }

    void splitEqualsWholeAtNoOpt(String name) {
        float[] whole = Ort.whole(file, inputs, "last_hidden_state", OptLevel.NO_OPT);

        float[] split = dispatched(MAPS.get(name), NO_OPT);

        System.out.printf("int8 MiniLM, %s, NO_OPT: min cosine to whole %.8f, max |diff| %.3g%n", name,
                minCosine(whole, split), Ort.maxAbsDiff(whole, split));
        assertThat(minCosine(whole, split)).isGreaterThanOrEqualTo(0.9999);
        assertThat(Ort.maxAbsDiff(whole, split)).isLessThanOrEqualTo(1e-5);
    }

    @Test
    void splittingAfterLayerZeroEqualsTheWholeModelAtTheSameLevel() {
        splitEqualsWholeAtNoOpt("split after layer 0");
    }

    @Test
    void everyLayerOnDiskEqualsTheWholeModelAtTheSameLevel() {
        splitEqualsWholeAtNoOpt("every layer on disk");
    }

    @Test
    void aMixedMapEqualsTheWholeModelAtTheSameLevel() {
        splitEqualsWholeAtNoOpt("mixed map");
    }

    /**
     * At ORT's default level ({@code ALL_OPT}) and at {@code EXTENDED_OPT} the whole model fuses each quantized
     * pattern (DynamicQuantizeLinear, MatMulInteger, rescale) and each LayerNorm; the partitioner keeps every pattern
     * and its constants inside one partition, so a split run fuses alike and equals the whole run at that level.
     */
    void splitEqualsWholeAt(String name, OptLevel level) {
        float[] whole = Ort.whole(file, inputs, "last_hidden_state", level);

        float[] split = dispatched(MAPS.get(name), CausalLmFidelityTest.OPTIONS.withOptimizationLevel(level));

        System.out.printf("int8 MiniLM, %s, %s: min cosine to whole %.8f, max |diff| %.3g%n", name, level,
                minCosine(whole, split), Ort.maxAbsDiff(whole, split));
        assertThat(minCosine(whole, split)).isGreaterThanOrEqualTo(0.9999);
        assertThat(Ort.maxAbsDiff(whole, split)).isLessThanOrEqualTo(1e-5);
    }

    @Test
    void everyLayerOnDiskEqualsTheWholeModelAtOrtsDefaultLevel() {
        splitEqualsWholeAt("every layer on disk", OptLevel.ALL_OPT);
    }

    @Test
    void everyLayerOnDiskEqualsTheWholeModelAtExtendedOpt() {
        splitEqualsWholeAt("every layer on disk", OptLevel.EXTENDED_OPT);
    }

    @Test
    void aMixedMapEqualsTheWholeModelAtOrtsDefaultLevel() {
        splitEqualsWholeAt("mixed map", OptLevel.ALL_OPT);
    }

    @Test
    void splittingAfterLayerZeroEqualsTheWholeModelAtOrtsDefaultLevel() {
        splitEqualsWholeAt("split after layer 0", OptLevel.ALL_OPT);
    }

    @Test
    void eachQuantizedPatternAndItsConstantsLieInOnePartition() {
        var plan = OnnxDispatchedModel.plan(OnnxModuleTree.build(model), DeviceMap.of(MAPS.get("every layer on disk")),
                PreloadRule.none());
        for (Partition p : GraphPartitioner.partition(OnnxModuleTree.build(model), plan)) {
            java.util.Set<String> produced = new java.util.HashSet<>();
            p.nodes().forEach(i -> produced.addAll(model.node(i).getOutputList()));
            for (int i : p.nodes()) {
                var node = model.node(i);
                if (node.getOpType().equals("MatMulInteger")) {
                    assertThat(produced).as("partition %s: the quantized input of %s", p.label(), node.getName())
                            .contains(node.getInput(0));
                }
            }
            for (String in : p.inputs()) {
                assertThat(model.nodes().stream().filter(n -> n.getOutputList().contains(in))
                        .map(n -> n.getOpType()).toList())
                        .as("partition %s reads %s across the cut", p.label(), in).doesNotContain("Constant");
            }
        }
    }
}

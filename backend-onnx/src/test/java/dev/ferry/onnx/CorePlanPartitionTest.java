package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The partitions are the core's plan carried out: resident mapped blocks, and inside offloaded blocks the
 * modules the core gives an offload hook (a preload unit whole); nothing of the plan is decided again here.
 */
class CorePlanPartitionTest {

    static final Path LLAMA = TestModels.fixture("tiny-llama", "model.onnx");
    static final Device GPU0 = Device.accelerator(0);
    static final OnnxModuleTree TREE = OnnxModuleTree.build(OnnxModel.load(LLAMA));
    static final PreloadRule LAYER_UNITS = new PreloadRule(Set.of("LlamaDecoderLayer"));

    static List<String> offloadHooked(DispatchReport plan) {
        return plan.modules().stream().filter(e -> e.hooked() && e.hook().offload()).map(DispatchReport.Entry::name)
                .toList();
    }

    static List<String> offloadedLabels(List<Partition> partitions) {
        return partitions.stream().filter(Partition::offloaded).map(Partition::label).toList();
    }

    @Test
    void offloadedPartitionsAreTheModulesTheCoreGivesOffloadHooks() {
        Map<String, Device> map = CausalLmFidelityTest.llamaMap();
        DispatchPlan plan = OnnxDispatchedModel.plan(TREE, DeviceMap.of(map), PreloadRule.none());

        List<Partition> partitions = GraphPartitioner.partition(TREE, plan);

        assertThat(offloadedLabels(partitions)).containsExactlyElementsOf(offloadHooked(plan.report())).contains(
                "model.layers.1.self_attn.q_proj", "model.layers.2.mlp.down_proj", "model.norm").hasSize(19);
    }

    @Test
    void preloadUnitsOfAnOffloadedBlockArePartitionsOfTheirOwn() {
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model.embed_tokens", GPU0);
        map.put("model.rotary_emb", GPU0);
        map.put("model.layers", Device.disk());
        map.put("model.norm", GPU0);
        map.put("lm_head", GPU0);
        DispatchPlan plan = OnnxDispatchedModel.plan(TREE, DeviceMap.of(map), LAYER_UNITS);

        List<Partition> partitions = GraphPartitioner.partition(TREE, plan);

        assertThat(offloadedLabels(partitions)).containsExactly("model.layers.0", "model.layers.1", "model.layers.2",
                "model.layers.3");
        assertThat(partitions).filteredOn(Partition::offloaded).extracting(Partition::block)
                .containsOnly("model.layers");
    }

    @Test
    void aNestedMapIsCutAtTheCoresResolvedBlocks() {
        Map<String, Device> map = new LinkedHashMap<>();
        map.put("model", GPU0);
        map.put("model.layers.2", Device.disk());
        map.put("lm_head", Device.cpu());
        DispatchPlan plan = OnnxDispatchedModel.plan(TREE, DeviceMap.of(map), LAYER_UNITS);

        List<Partition> partitions = GraphPartitioner.partition(TREE, plan);

        assertThat(partitions).extracting(Partition::label).containsExactly("model.embed_tokens", "model.rotary_emb",
                "model.layers.0", "model.layers.1", "model.layers.2", "model.layers.3", "model.norm", "lm_head");
        assertThat(partitions).extracting(Partition::block).containsOnlyOnceElementsOf(
                plan.deviceMap().entries().keySet());
        assertThat(offloadedLabels(partitions)).containsExactly("model.layers.2", "lm_head");
    }

    @Test
    void eachPartitionIsOneWeightUnitOfThePlan() {
        Map<String, Device> map = CausalLmFidelityTest.llamaMap();
        DispatchPlan plan = OnnxDispatchedModel.plan(TREE, DeviceMap.of(map), LAYER_UNITS);

        List<Partition> partitions = GraphPartitioner.partition(TREE, plan);

        assertThat(partitions).extracting(Partition::label).containsExactlyElementsOf(
                plan.weightUnits().stream().map(DispatchPlan.Unit::path).toList());
        assertThat(partitions).extracting(Partition::offloaded).containsExactlyElementsOf(
                plan.weightUnits().stream().map(DispatchPlan.Unit::offloaded).toList());
    }

    @Test
    void opsWithoutTensorsNeedNoKeyAndTheReportKeepsTheCorePlan() {
        Map<String, Device> map = CausalLmFidelityTest.llamaMap();
        map.remove("model.rotary_emb"); // ops (cos/sin tables), no tensor: the core needs no key for it
        JsonNode golden = TestModels.json(TestModels.fixture("tiny-llama", "golden.json"));
        try (OnnxTensor in = Ort.ids(CausalLmFidelityTest.longs(golden.get("input_ids")));
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(TREE, DeviceMap.of(map), LAYER_UNITS,
                     CausalLmFidelityTest.OPTIONS);
             OnnxRunResult r = d.run(Map.of("input_ids", in))) {
            assertThat(d.report().core()).isSameAs(d.plan().report());
            assertThat(d.plan().report().entry("model.rotary_emb").hooked()).isFalse();
            assertThat(d.partitions()).extracting(Partition::label).doesNotContain("model.rotary_emb");
            assertThat(Ort.maxAbsDiff(r.floats("logits"), Ort.whole(LLAMA, Map.of("input_ids", in), "logits")))
                    .isLessThanOrEqualTo(1e-5);
        }
    }
}

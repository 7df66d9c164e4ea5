package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.DispatchPlan.Unit;
import dev.ferry.core.dispatch.DispatchReport.Reason;
import dev.ferry.core.hook.Hooks;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.testing.TestLayers.Stack;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The plan of units that both backends carry out, and the report as its view. */
class DispatchPlanTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device CPU = Device.cpu();
    private static final PreloadRule LAYERS = new PreloadRule(Set.of("LlamaDecoderLayer"));

    private static DispatchPlan layerThreeOnCpu() {
        return Dispatcher.plan(AttachAlgorithmTest.llama(), AttachAlgorithmTest.llamaMap(GPU0, GPU0, GPU0, CPU), LAYERS);
    }

    @Test
    void unitsAreTheHookedModulesInTreeOrder() {
        DispatchPlan plan = layerThreeOnCpu();

        assertThat(plan.units()).extracting(Unit::path).containsExactlyElementsOf(plan.report().hookedModules());
        assertThat(plan.units()).extracting(Unit::path).containsExactly("", "model.embed_tokens", "model.layers.0",
                "model.layers.1", "model.layers.2", "model.layers.3", "model.norm", "model.rotary_emb", "lm_head");
    }

    @Test
    void anOffloadedPreloadLayerIsOneAtomicUnitHoldingItsWholeSubtree() {
        Unit layer3 = layerThreeOnCpu().unit("model.layers.3");

        assertThat(layer3.offloaded()).isTrue();
        assertThat(layer3.atomic()).isTrue();
        assertThat(layer3.storage()).isEqualTo(CPU);
        assertThat(layer3.executionDevice()).isEqualTo(GPU0);
        assertThat(layer3.block()).isEqualTo("model.layers.3");
        assertThat(layer3.reason()).isEqualTo(Reason.IN_DEVICE_MAP);
        assertThat(layer3.members()).hasSize(13).startsWith("model.layers.3", "model.layers.3.self_attn")
                .contains("model.layers.3.mlp.down_proj");
    }

    @Test
    void theRootAboveTheBlocksMovesInputsAndCarriesNoWeights() {
        Unit root = layerThreeOnCpu().unit("");

        assertThat(root.carriesWeights()).isFalse();
        assertThat(root.block()).isNull();
        assertThat(root.members()).containsExactly("");
        assertThat(layerThreeOnCpu().weightUnits()).extracting(Unit::path).doesNotContain("");
    }

    @Test
    void theDeviceMapIsResolvedOnceIntoThePlan() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("", GPU0);
        m.put("model.layers.3", CPU);
        DispatchPlan plan = Dispatcher.plan(AttachAlgorithmTest.llama(), DeviceMap.of(m), LAYERS);

        assertThat(plan.deviceMap().entries()).containsOnlyKeys("model.embed_tokens", "model.layers.0",
                "model.layers.1", "model.layers.2", "model.layers.3", "model.norm", "model.rotary_emb", "lm_head");
        assertThat(plan.report().deviceMap()).isSameAs(plan.deviceMap());
    }

    @Test
    void dispatchAttachesOneHookPerUnitOfThePlan() {
        TestBackend backend = new TestBackend(1);
        Stack model = new Stack(backend, 4, 4, false, 5);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed", GPU0);
        m.put("model.layers", CPU);
        m.put("model.norm", GPU0);
        m.put("head", GPU0);
        DispatchOptions options = DispatchOptions.of(DeviceMap.of(m));
        DispatchPlan plan = Dispatcher.plan(model, options.deviceMap(), options.preload());

        new Dispatcher(backend).dispatch(model, plan, options);

        List<String> hooked = model.modules().stream().filter(x -> x.hook() != null).map(Module::name).toList();
        assertThat(hooked).containsExactlyElementsOf(plan.units().stream().map(Unit::path).toList());
        Hooks.remove(model, true);
    }

    @Test
    void mapKeysWithoutModulesAreListedInTheTableAndJsonOnlyWhenPresent() {
        DispatchPlan plan = layerThreeOnCpu();
        DispatchPlan noted = plan.withKeysWithoutModules(List.of("model.drop"));

        assertThat(plan.report().toTable()).doesNotContain("without ops");
        assertThat(noted.report().toTable()).contains(
                "device map keys without ops in the model (accepted, nothing to place): [model.drop]");
        assertThat(noted.report().toJson()).contains("\"map_keys_without_ops\" : [ \"model.drop\" ]");
        assertThat(plan.report().toJson()).doesNotContain("map_keys_without_ops");
    }
}

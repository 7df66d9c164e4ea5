package dev.ferry.core.placement;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.ModuleTreeJson;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Preload units are kept whole by the planner itself; a family's default block classes come from the family. */
class PreloadPlanningTest {

    private static final Device GPU0 = Device.accelerator(0);
    // embeddings (64 KiB), one decoder layer (144.5 KiB) and the reserve for the largest offloaded unit fit; the
    // budget ends inside layer 1
    private static final Map<Device, Long> BUDGETS = Map.of(GPU0, 64L * 1024 + 300L * 1024, Device.cpu(), 1L << 30);

    private static Module llama() {
        return ModuleTreeJson.read(Fixtures.model("tiny-llama").resolve("module_tree.json"));
    }

    private static boolean splitsALayer(DeviceMap map) {
        return map.entries().keySet().stream().anyMatch(k -> k.matches("model\\.layers\\.\\d+\\..+"));
    }

    @Test
    void withoutNoSplitOrPreloadTheBudgetSplitsALayer() {
        DevicePlan plan = new DevicePlanner().plan(llama(), new PlanRequest(BUDGETS, Set.of(),
                PlanRequest.Strategy.SEQUENTIAL, null, Map.of(), false, true));

        assertThat(splitsALayer(plan.deviceMap())).isTrue();
    }

    @Test
    void preloadClassesArePlacedWholeAndTheMapDispatchesWithThem() {
        Set<String> preload = Set.of("LlamaDecoderLayer");
        DevicePlan plan = new DevicePlanner().plan(llama(), new PlanRequest(BUDGETS, Set.of(),
                PlanRequest.Strategy.SEQUENTIAL, null, Map.of(), false, true).withPreload(preload));

        assertThat(splitsALayer(plan.deviceMap())).isFalse();
        assertThat(plan.deviceMap().entries()).containsEntry("model.layers.0", GPU0)
                .containsEntry("model.layers.1", Device.cpu());
        assertThatCode(() -> Dispatcher.plan(llama(), plan.deviceMap(), new PreloadRule(preload)))
                .doesNotThrowAnyException();
    }

    @Test
    void familyDefaultsAreTransformersNoSplitModules() {
        Module gpt2 = ModuleTreeJson.read(Fixtures.model("tiny-gpt2").resolve("module_tree.json"));

        assertThat(NoSplitModules.of(llama())).containsExactly("LlamaDecoderLayer");
        assertThat(NoSplitModules.of(gpt2)).containsExactly("GPT2Block");
    }

    @Test
    void anUnknownFamilyFallsBackToTheClassOfAModuleListsChildren() {
        Module root = new Module("MyModel");
        Module list = root.addChild("blocks", new Module("ModuleList"));
        list.addChild("0", new Module("MyBlock"));
        list.addChild("1", new Module("MyBlock"));

        assertThat(NoSplitModules.of(root)).containsExactly("MyBlock");
    }
}

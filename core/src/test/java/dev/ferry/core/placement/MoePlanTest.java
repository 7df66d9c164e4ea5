package dev.ferry.core.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.module.Module;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.MoeTree;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** {@code auto} under a GPU budget: dense weights on the GPU first, experts in what is left, then CPU, then disk. */
class MoePlanTest {

    static final Device GPU = Device.accelerator(0);
    static final Device CPU = Device.cpu();
    static final Device DISK = Device.disk();
    static final Set<String> PRELOAD = Set.of(MoeTree.LAYER);
    // h 64, I 96, 4 experts: an expert 73,728 B, a layer's experts 294,912 B, a layer's dense weights 34,304 B
    static final long EXPERT = 3L * 64 * 96 * 4;
    static final long DENSE_LAYER = 2L * 64 * 64 * 4 + 4L * 64 * 4 + 2L * 64 * 4;
    static final long EMBED = 256L * 64 * 4;

    static Module tree() {
        return MoeTree.mixtral(4, 4, 2, 64, 96);
    }

    static DevicePlan plan(Module root, Map<Device, Long> budgets) {
        return new DevicePlanner().plan(root, new PlanRequest(budgets, Set.of(), PlanRequest.Strategy.AUTO, null,
                Map.of(), false, true, PRELOAD));
    }

    static Map<Device, Long> budgets(Object... kv) {
        Map<Device, Long> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((Device) kv[i], ((Number) kv[i + 1]).longValue());
        }
        return m;
    }

    @Test
    void denseWeightsStayOnTheGpuAndExpertsGoToCpuMemory() {
        // room for all dense weights and the streaming reserve, not for any layer's experts
        long gpu = 2 * EMBED + 256 + 4 * DENSE_LAYER + 2 * EXPERT;
        DevicePlan plan = plan(tree(), budgets(GPU, gpu, CPU, 1L << 30));

        DeviceMap map = plan.deviceMap();
        for (int l = 0; l < 4; l++) {
            assertThat(map.deviceOf("model.layers." + l + ".self_attn.q_proj.weight")).isEqualTo(GPU);
            assertThat(map.deviceOf("model.layers." + l + ".mlp.gate.weight")).isEqualTo(GPU);
            assertThat(map.deviceOf("model.layers." + l + ".input_layernorm.weight")).isEqualTo(GPU);
            assertThat(map.deviceOf("model.layers." + l + ".mlp.experts.1.w2.weight")).isEqualTo(CPU);
        }
        assertThat(map.entries()).containsEntry("model.layers.2.mlp.experts", CPU);
        assertThat(plan.bytesPerDevice()).containsEntry(CPU, 4 * 4 * EXPERT);
        assertThat(plan.totalBytes()).isEqualTo(2 * EMBED + 256 + 4 * DENSE_LAYER + 16 * EXPERT);
    }

    @Test
    void thePlannedMapDispatchesWithTheLayersAsPreloadUnitsAndEveryExpertRouted() {
        long gpu = 2 * EMBED + 256 + 4 * DENSE_LAYER + 2 * EXPERT;
        Module root = tree();
        DevicePlan plan = plan(root, budgets(GPU, gpu, CPU, 1L << 30));

        DispatchPlan dispatch = Dispatcher.plan(root, plan.deviceMap(), new PreloadRule(PRELOAD));
        assertThat(dispatch.routedUnits()).hasSize(16);
        assertThat(dispatch.unit("model.layers.3").hook().placeSubmodules()).isTrue();
        assertThat(dispatch.unit("model.layers.3").offloaded()).isFalse();
    }

    @Test
    void expertsTakeTheRoomLeftOnTheGpuThenCpuMemoryThenDisk() {
        // the GPU keeps the dense weights plus one layer's experts; the CPU two layers' experts; the rest on disk
        long gpu = 2 * EMBED + 256 + 4 * DENSE_LAYER + 2 * EXPERT + 4 * EXPERT;
        DevicePlan plan = plan(tree(), budgets(GPU, gpu, CPU, 8 * EXPERT));

        DeviceMap map = plan.deviceMap();
        assertThat(map.deviceOf("model.layers.0.mlp.experts.0.w1.weight")).isEqualTo(GPU);
        assertThat(map.deviceOf("model.layers.1.mlp.experts.0.w1.weight")).isEqualTo(CPU);
        assertThat(map.deviceOf("model.layers.2.mlp.experts.0.w1.weight")).isEqualTo(CPU);
        assertThat(map.deviceOf("model.layers.3.mlp.experts.0.w1.weight")).isEqualTo(DISK);
        assertThat(map.deviceOf("model.layers.3.self_attn.q_proj.weight")).isEqualTo(GPU);
    }

    @Test
    void aModelThatFitsTheGpuIsPlannedAsUsual() {
        DevicePlan plan = plan(tree(), budgets(GPU, 1L << 30, CPU, 1L << 30));

        assertThat(plan.deviceMap().entries()).containsExactly(Map.entry("", GPU));
    }
}

package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.dispatch.DispatchReport.Reason;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.MoeTree;
import dev.ferry.core.testing.TestBackend;
import dev.ferry.core.weights.HostMemoryStore;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Experts are units of the plan: mapped apart from a preload unit, one expert at a time, fetched as routed. */
class ExpertUnitsTest {

    static final Device GPU = Device.accelerator(0);
    static final Device CPU = Device.cpu();
    static final Device DISK = Device.disk();
    static final PreloadRule PRELOAD = new PreloadRule(Set.of(MoeTree.LAYER));

    static Module tree() {
        return MoeTree.mixtral(2, 4, 2, 64, 96);
    }

    static DeviceMap map(Object... kv) {
        Map<String, Device> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) {
            m.put((String) kv[i], (Device) kv[i + 1]);
        }
        return DeviceMap.of(m);
    }

    @Test
    void expertsMappedApartLeaveThePreloadUnitItsDenseWeightsAndBecomeRoutedUnits() {
        DispatchPlan plan = Dispatcher.plan(tree(), map("", GPU, "model.layers.1.mlp.experts", CPU), PRELOAD);

        DispatchPlan.Unit layer = plan.unit("model.layers.1");
        assertThat(layer.hook().placeSubmodules()).isTrue();
        assertThat(layer.offloaded()).isFalse();
        assertThat(layer.apart()).containsExactly("model.layers.1.mlp.experts");
        assertThat(layer.members()).contains("model.layers.1.self_attn.q_proj", "model.layers.1.mlp.gate")
                .noneMatch(m -> m.startsWith("model.layers.1.mlp.experts"));
        assertThat(plan.routedUnits()).extracting(DispatchPlan.Unit::path).containsExactly(
                "model.layers.1.mlp.experts.0", "model.layers.1.mlp.experts.1", "model.layers.1.mlp.experts.2",
                "model.layers.1.mlp.experts.3");
        assertThat(plan.routedUnits()).allMatch(u -> u.offloaded() && u.atomic() && u.storage().equals(CPU)
                && u.executionDevice().equals(GPU) && u.reason() == Reason.ROUTED_EXPERT);
        // layer 0 keeps its experts inside its unit
        assertThat(plan.unit("model.layers.0").apart()).isEmpty();
        assertThat(plan.unit("model.layers.0.mlp.experts.0")).isNull();
    }

    @Test
    void theReportSaysTheUnitHoldsDenseWeightsAndExpertsAreFetchedAsRouted() {
        DispatchReport report = Dispatcher.plan(tree(), map("", GPU, "model.layers.1.mlp.experts", CPU), PRELOAD)
                .report();

        assertThat(report.entry("model.layers.1").reasonText()).contains("dense weights").contains("mlp.experts");
        assertThat(report.entry("model.layers.1.mlp.experts").reason()).isEqualTo(Reason.IN_DEVICE_MAP);
        assertThat(report.entry("model.layers.1.mlp.experts.2").reasonText()).contains("routed expert");
        assertThat(report.entry("model.layers.1.mlp.experts.2.w1").hooked()).isFalse();
        assertThat(report.entry("model.layers.1.self_attn.q_proj").reason()).isEqualTo(Reason.BELOW_PRELOAD_CLASS);
        long expert = 3L * 64 * 96 * 4;
        assertThat(report.memory().routed().experts()).isEqualTo(4);
        assertThat(report.memory().routed().storedBytes()).isEqualTo(4 * expert);
        assertThat(report.memory().routed().bytesPerTokenAtMost()).isEqualTo(2 * expert);
        assertThat(report.memory().streamedBytesPerTokenAtMost()).isEqualTo(2 * expert);
        assertThat(report.toTable()).contains("routed experts apart: 4 in 1 layer(s)");
    }

    @Test
    void theTransformers4SpellingOfTheMoeBlockPlansTheSameUnits() {
        DispatchPlan v5 = Dispatcher.plan(tree(), map("", GPU, "model.layers.1.mlp.experts", CPU), PRELOAD);
        DispatchPlan v4 = Dispatcher.plan(tree(), map("", GPU, "model.layers.1.block_sparse_moe.experts", CPU),
                PRELOAD);

        assertThat(v4.units()).isEqualTo(v5.units());
        assertThat(v4.deviceMap().entries()).containsKey("model.layers.1.mlp.experts");
    }

    @Test
    void oneExpertCanBePlacedApartFromItsSiblings() {
        DispatchPlan plan = Dispatcher.plan(tree(), map("", GPU, "model.layers.0.mlp.experts", CPU,
                "model.layers.0.mlp.experts.3", DISK, "model.layers.1.mlp.experts.2", CPU), PRELOAD);

        assertThat(plan.unit("model.layers.0.mlp.experts.3").storage()).isEqualTo(DISK);
        assertThat(plan.unit("model.layers.0.mlp.experts.0").storage()).isEqualTo(CPU);
        assertThat(plan.routedUnits()).hasSize(5);
        // in layer 1 only expert 2 is away; its siblings stay in the layer's unit on the GPU
        assertThat(plan.unit("model.layers.1").apart()).containsExactly("model.layers.1.mlp.experts.2");
        assertThat(plan.unit("model.layers.1").members()).contains("model.layers.1.mlp.experts.1.w1");
        assertThat(plan.unit("model.layers.1.mlp.experts.2").routed()).isTrue();
    }

    @Test
    void anOffloadedPreloadUnitStreamsItsDenseWeightsAndFetchesItsExpertsAsRouted() {
        DispatchPlan plan = Dispatcher.plan(tree(), map("model", GPU, "model.layers.1", CPU, "lm_head", GPU),
                PRELOAD);

        DispatchPlan.Unit layer = plan.unit("model.layers.1");
        assertThat(layer.offloaded()).isTrue();
        assertThat(layer.apart()).containsExactly("model.layers.1.mlp.experts");
        assertThat(layer.members()).noneMatch(m -> m.contains("experts"));
        assertThat(plan.routedUnits()).hasSize(4).allMatch(u -> u.path().startsWith("model.layers.1.mlp.experts."));
        assertThat(plan.report().memory().blockBytesPerForward()).isEqualTo(2L * 64 * 64 * 4 + 4 * 64 * 4 + 2 * 64 * 4);
    }

    @Test
    void aMapExpandedAroundTheExpertsIsOnePreloadUnitAgain() {
        DispatchPlan expanded = Dispatcher.plan(tree(), map("model.embed_tokens", GPU, "model.layers.0", GPU,
                "model.layers.1.self_attn", GPU, "model.layers.1.mlp.gate", GPU, "model.layers.1.mlp.experts", CPU,
                "model.layers.1.input_layernorm", GPU, "model.layers.1.post_attention_layernorm", GPU,
                "model.norm", GPU, "lm_head", GPU), PRELOAD);

        assertThat(expanded.unit("model.layers.1").apart()).containsExactly("model.layers.1.mlp.experts");
        assertThat(expanded.unit("model.layers.1.self_attn")).isNull();
        assertThat(expanded.routedUnits()).hasSize(4);
    }

    @Test
    void aPreloadUnitSplitOtherwiseThanAtItsExpertsIsStillRefused() {
        assertThatThrownBy(() -> Dispatcher.plan(tree(), map("", GPU, "model.layers.1.self_attn", CPU), PRELOAD))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("splits preload unit 'model.layers.1'");
    }

    @Test
    void anExpertIsPlacedWhole() {
        assertThatThrownBy(() -> Dispatcher.plan(tree(), map("", GPU, "model.layers.1.mlp.experts.2.w1", CPU),
                PRELOAD)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("splits expert 'model.layers.1.mlp.experts.2'");
    }

    @Test
    void anExpertIndexOutOfRangeIsANamedError() {
        assertThatThrownBy(() -> Dispatcher.plan(tree(), map("", GPU, "model.layers.1.mlp.experts.7", CPU),
                PRELOAD)).isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.layers.1.mlp.experts.7")
                .hasMessageContaining("has experts 0..3");
    }

    @Test
    void withoutPreloadClassesOffloadedExpertsAreStillOneUnitEach() {
        DispatchPlan plan = Dispatcher.plan(tree(), map("", GPU, "model.layers.1.mlp.experts", DISK),
                PreloadRule.none());

        assertThat(plan.routedUnits()).hasSize(4);
        assertThat(plan.unit("model.layers.1.mlp.experts.0.w1")).isNull();
        assertThat(plan.unit("model.layers.1.mlp.experts.0").members()).contains("model.layers.1.mlp.experts.0.w2");
    }

    @Test
    void expertsOffloadedToCpuMemoryLiveInPageLockedMemoryWhileTheDenseWeightsAreOnTheAccelerator() {
        TestBackend backend = new TestBackend(1);
        Module root = tree();
        HostMemoryStore checkpoint = new HostMemoryStore();
        root.stateDict().forEach((name, slot) -> checkpoint.put(name, slot.spec(),
                ByteBuffer.allocate((int) slot.byteSize()).order(ByteOrder.LITTLE_ENDIAN)));
        DeviceMap map = map("", GPU, "model.layers.0.mlp.experts", CPU, "model.layers.1.mlp.experts", CPU);

        CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend)).loadAndDispatch(
                root, checkpoint, CheckpointDispatcher.Options.of(map).withDispatch(
                        DispatchOptions.of(map).withPreloadClasses(PRELOAD.preloadClasses())));

        long experts = 2 * 4 * 3L * 64 * 96 * 4;
        assertThat(result.hostOffloadBytes()).isEqualTo(experts);
        // (a locked buffer's capacity may run a page past its tensor: allocations are whole pages)
        assertThat(backend.locking().buffers().stream().mapToLong(ByteBuffer::limit).sum()).isEqualTo(experts);
        assertThat(root.find("model.layers.1.self_attn.q_proj").tensor("weight").device()).isEqualTo(GPU);
        assertThat(root.find("model.layers.1.mlp.experts.3.w2").tensor("weight").isMaterialised()).isFalse();
        Dispatcher.remove(root);
        assertThat(backend.locking().lockedBytes()).isZero();
    }
}

package dev.ferry.core.placement;

import static dev.ferry.core.placement.Llama405B.EMBED_BYTES;
import static dev.ferry.core.placement.Llama405B.LAYER_BYTES;
import static dev.ferry.core.placement.Llama405B.TOTAL_BYTES;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.Device;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The 405B-shaped tree over 8 × 80 GiB + 100 GiB cpu + disk, no-split LlamaDecoderLayer. Timing lives in
 * benchmarks module's JMH {@code dev.ferry.examples.bench.PlanningBenchmark}, not here.
 */
class LargeModelPlanTest {

    private static final long GIB = 1L << 30;
    private static Module tree;
    private static Map<Device, Long> budgets;
    private static DevicePlan plan;

    @BeforeAll
    static void plan() {
        tree = Llama405B.build();
        budgets = new LinkedHashMap<>();
        for (int i = 0; i < 8; i++) {
            budgets.put(Device.accelerator(i), 80 * GIB);
        }
        budgets.put(Device.cpu(), 100 * GIB);
        plan = new DevicePlanner().plan(tree, PlanRequest.of(budgets).withNoSplit("LlamaDecoderLayer"));
    }

    @Test
    void treeHasTheModulesOfTransformersLlamaForCausalLM() {
        assertThat(tree.modules()).hasSize(1645);
        assertThat(Llama405B.LAYER_BYTES).isEqualTo(6_375_407_616L);
        assertThat(ModuleSizes.of(tree).total()).isEqualTo(TOTAL_BYTES).isEqualTo(811_706_778_112L);
    }

    @Test
    void balancingLeavesBudgetsAsGivenWhenTheModelOverflowsThem() {
        // share 811.7 GB / 8 plus 1.25 x a layer is above 80 GiB: nothing to lower
        assertThat(plan.budgets()).containsAllEntriesOf(budgets);
    }

    @Test
    void layersFillAcceleratorsInOrderThenCpuThenDisk() {
        Map<String, Device> expected = new LinkedHashMap<>();
        expected.put("model.embed_tokens", Device.accelerator(0));
        for (int layer = 0; layer < 126; layer++) {
            Device d;
            if (layer < 11) {
                d = Device.accelerator(0); // 80 GiB - one layer kept free - embed_tokens: 11 layers
            } else if (layer < 102) {
                d = Device.accelerator(1 + (layer - 11) / 13); // 80 GiB / 6.38 GB: 13 layers each
            } else if (layer < 117) {
                d = Device.cpu(); // 100 GiB - one layer kept free: 15 layers
            } else {
                d = Device.disk();
            }
            expected.put("model.layers." + layer, d);
        }
        expected.put("model.norm", Device.disk());
        expected.put("model.rotary_emb", Device.disk());
        expected.put("lm_head", Device.disk());

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(expected);
    }

    @Test
    void bytesPerDeviceAddUpToTheModel() {
        Map<Device, Long> expected = new LinkedHashMap<>();
        expected.put(Device.accelerator(0), EMBED_BYTES + 11 * LAYER_BYTES);
        for (int i = 1; i < 8; i++) {
            expected.put(Device.accelerator(i), 13 * LAYER_BYTES);
        }
        expected.put(Device.cpu(), 15 * LAYER_BYTES);
        expected.put(Device.disk(), 9 * LAYER_BYTES + 2 * 16384 + 512 + EMBED_BYTES);

        assertThat(plan.bytesPerDevice()).containsExactlyEntriesOf(expected);
        assertThat(plan.bytesPerDevice().values().stream().mapToLong(Long::longValue).sum()).isEqualTo(TOTAL_BYTES);
    }

    @Test
    void budgetsAreRespectedWithRoomKeptOnTheMainDevices() {
        assertThat(plan.reservedBytes()).containsExactly(Map.entry(Device.accelerator(0), LAYER_BYTES),
                Map.entry(Device.cpu(), LAYER_BYTES));
        plan.bytesPerDevice().forEach((device, bytes) -> {
            if (plan.budgets().containsKey(device)) {
                assertThat(bytes + plan.reservedBytes().getOrDefault(device, 0L))
                        .as("bytes on %s", device).isLessThanOrEqualTo(plan.budgets().get(device));
            }
        });
    }

    @Test
    void everyTensorIsCoveredByExactlyTheDeviceOfItsLayer() {
        DeviceMap resolved = plan.deviceMap().resolve(tree);
        Map<String, TensorSlot> tensors = tree.namedTensors();

        assertThat(tensors).hasSize(126 * 9 + 5);
        tensors.keySet().forEach(name -> assertThat(resolved.deviceOf(name)).as(name).isNotNull());
        assertThat(resolved.deviceOf("model.layers.101.mlp.down_proj.weight")).isEqualTo(Device.accelerator(7));
        assertThat(resolved.deviceOf("model.layers.102.self_attn.q_proj.weight")).isEqualTo(Device.cpu());
    }

    @Test
    void noWarnings() {
        assertThat(plan.warnings()).isEmpty();
    }
}

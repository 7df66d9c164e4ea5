package dev.ferry.core.placement;

import static dev.ferry.core.placement.TestModels.CPU;
import static dev.ferry.core.placement.TestModels.DISK;
import static dev.ferry.core.placement.TestModels.GPU0;
import static dev.ferry.core.placement.TestModels.map;
import static dev.ferry.core.placement.TestModels.memory;
import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.module.Module;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Plans of the fixture trees built from testdata/{tiny-llama,tiny-gpt2}/module_tree.json. */
class FixturePlanTest {

    private final DevicePlanner planner = new DevicePlanner();

    // tiny-llama: embed 65536 B, each decoder layer 147968 B, norm 256 B, rotary buffers 64 B, lm_head 65536 B

    private DevicePlan tinyLlamaOverGpuCpuDisk() {
        return planner.plan(TestModels.tinyLlama(),
                PlanRequest.of(memory(GPU0, 400_000, CPU, 400_000)).withNoSplit("LlamaDecoderLayer"));
    }

    @Test
    void tinyLlamaSpillsLayersToCpuThenDisk() {
        assertThat(tinyLlamaOverGpuCpuDisk().deviceMap().entries()).containsExactlyEntriesOf(map(
                "model.embed_tokens", GPU0,
                "model.layers.0", GPU0,
                "model.layers.1", CPU,
                "model.layers.2", DISK,
                "model.layers.3", DISK,
                "model.norm", DISK,
                "model.rotary_emb", DISK,
                "lm_head", DISK));
    }

    @Test
    void tinyLlamaBytesPerDeviceAndReservations() {
        DevicePlan plan = tinyLlamaOverGpuCpuDisk();

        assertThat(plan.bytesPerDevice()).containsExactly(
                Map.entry(GPU0, 65_536L + 147_968L),
                Map.entry(CPU, 147_968L),
                Map.entry(DISK, 2 * 147_968L + 256L + 64L + 65_536L));
        assertThat(plan.reservedBytes()).containsExactly(Map.entry(GPU0, 147_968L), Map.entry(CPU, 147_968L));
        assertThat(plan.totalBytes()).isEqualTo(723_264L);
    }

    @Test
    void tinyLlamaPlanResolvesAgainstTheTree() {
        Module tree = TestModels.tinyLlama();
        DeviceMap resolved = tinyLlamaOverGpuCpuDisk().deviceMap().resolve(tree);

        assertThat(resolved.deviceOf("model.layers.1.mlp.down_proj.weight")).isEqualTo(CPU);
        assertThat(resolved.deviceOf("model.rotary_emb.inv_freq")).isEqualTo(DISK);
    }

    @Test
    void tinyLlamaWithoutNoSplitIsSplitInsideALayer() {
        DevicePlan plan = planner.plan(TestModels.tinyLlama(), PlanRequest.of(memory(GPU0, 400_000, CPU, 400_000)));

        // the largest leaf is 65536 B (embed_tokens, lm_head), so 334464 B are usable on gpu0: embed, layer 0,
        // then layer 1's attention and two of its three MLP projections (32768 B each)
        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(map(
                "model.embed_tokens", GPU0,
                "model.layers.0", GPU0,
                "model.layers.1.self_attn", GPU0,
                "model.layers.1.mlp.gate_proj", GPU0,
                "model.layers.1.mlp.up_proj", GPU0,
                "model.layers.1.mlp.down_proj", CPU,
                "model.layers.1.mlp.act_fn", CPU,
                "model.layers.1.input_layernorm", CPU,
                "model.layers.1.post_attention_layernorm", CPU,
                "model.layers.2", CPU,
                "model.layers.3", CPU,
                "model.norm", CPU,
                "model.rotary_emb", CPU,
                "lm_head", CPU));
    }

    @Test
    void tinyLlamaFitsWholeOnABigEnoughAccelerator() {
        DevicePlan plan = planner.plan(TestModels.tinyLlama(), PlanRequest.of(memory(GPU0, 723_264)));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(map("", GPU0));
    }

    // tiny-gpt2: wte 65536 B (tied with lm_head, which weighs 0), wpe 32768 B, each block 199936 B, ln_f 512 B

    @Test
    void tinyGpt2LmHeadFollowsTheTiedEmbeddingToTheFirstDevice() {
        DevicePlan plan = planner.plan(TestModels.tinyGpt2(),
                PlanRequest.of(memory(GPU0, 300_000, CPU, 1_000_000)).withNoSplit("GPT2Block"));

        assertThat(plan.deviceMap().entries()).containsExactlyEntriesOf(map(
                "transformer.wte", GPU0,
                "transformer.wpe", GPU0,
                "transformer.drop", GPU0,
                "transformer.h", CPU,
                "transformer.ln_f", CPU,
                "lm_head", GPU0));
        assertThat(plan.bytesPerDevice()).containsExactly(Map.entry(GPU0, 98_304L), Map.entry(CPU, 800_256L));
    }

    @Test
    void tinyGpt2TiedPairMovesTogetherWhenTheEmbeddingIsOffloaded() {
        DevicePlan plan = planner.plan(TestModels.tinyGpt2(),
                PlanRequest.of(memory(GPU0, 1_000, CPU, 2_000_000)).withNoSplit("GPT2Block"));

        DeviceMap map = plan.deviceMap();
        assertThat(map.deviceOf("lm_head")).isEqualTo(map.deviceOf("transformer.wte")).isEqualTo(CPU);
    }
}

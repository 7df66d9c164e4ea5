package dev.ferry.core.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.module.Module;
import dev.ferry.core.module.RowLookup;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.tensor.TensorSpec;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * {@code auto} under a GPU budget the model overflows: an untied embedding (a {@link RowLookup}, which streams only
 * the rows it looks up when offloaded) takes what room the layers leave, instead of the first gigabyte Accelerate's
 * fill gives it. Tied embeddings and lookups inside a block are filled in tree order, as Accelerate fills them.
 */
class LookupPlanTest {

    static final Device GPU = Device.accelerator(0);
    static final Device CPU = Device.cpu();
    static final long VOCAB = 1000;
    static final long H = 64;
    static final long TABLE = VOCAB * H * 4; // 256,000 B
    static final long LAYER = H * H * 4; // one bias-free projection per layer: 16,384 B
    static final int LAYERS = 8;

    /** An embedding as the PyTorch layer library's: a lookup over its {@code weight}. */
    static final class Lookup extends Module implements RowLookup {
        Lookup(long rows, long dim) {
            super("Embedding");
            registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, rows, dim)));
        }
    }

    static Module projection(long in, long out) {
        Module m = new Module("Linear");
        m.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, out, in)));
        return m;
    }

    /** Llama-shaped: embed_tokens, {@code LAYERS} layers, norm, an untied lm_head as large as the table. */
    static Module llama(boolean lookup) {
        return llama(lookup, VOCAB);
    }

    static Module llama(boolean lookup, long vocab) {
        Module root = new Module("LlamaForCausalLM");
        Module model = root.addChild("model", new Module("LlamaModel"));
        Module embed = lookup ? new Lookup(vocab, H) : new Module("Embedding");
        if (!lookup) {
            embed.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, vocab, H)));
        }
        model.addChild("embed_tokens", embed);
        Module layers = model.addChild("layers", new Module("ModuleList"));
        for (int l = 0; l < LAYERS; l++) {
            layers.addChild(Integer.toString(l), new Module("LlamaDecoderLayer")).addChild("proj", projection(H, H));
        }
        Module norm = model.addChild("norm", new Module("LlamaRMSNorm"));
        norm.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, H)));
        root.addChild("lm_head", projection(H, vocab));
        return root;
    }

    static DevicePlan plan(Module root, long gpuBytes) {
        return new DevicePlanner().plan(root, new PlanRequest(new java.util.LinkedHashMap<>(Map.of(GPU, gpuBytes, CPU,
                1L << 30)), Set.of("LlamaDecoderLayer"), PlanRequest.Strategy.AUTO, null, Map.of(), false, true));
    }

    /** Room for the head's streaming reserve and five layers, not for the table as well. */
    static final long TIGHT = TABLE + 5 * LAYER + 2000;

    @Test
    void anUntiedEmbeddingLeavesTheGpuToTheLayersWhenTheModelDoesNotFit() {
        DevicePlan plan = plan(llama(true), TIGHT);

        DeviceMap map = plan.deviceMap();
        assertThat(map.deviceOf("model.embed_tokens.weight")).isEqualTo(CPU);
        for (int l = 0; l < 5; l++) {
            assertThat(map.deviceOf("model.layers." + l + ".proj.weight")).isEqualTo(GPU);
        }
        assertThat(map.deviceOf("model.layers.5.proj.weight")).isEqualTo(CPU);
        assertThat(map.deviceOf("lm_head.weight")).isEqualTo(CPU);
        assertThat(plan.bytesPerDevice()).containsEntry(GPU, 5 * LAYER);
        assertThat(map.entries().keySet()).allSatisfy(k -> assertThat(map.entries().keySet())
                .noneMatch(other -> !other.equals(k) && (k.isEmpty() || other.startsWith(k + "."))));
    }

    @Test
    void accelerateFillsTheSameTreeEmbeddingFirstAndKeepsNoLayerOnTheGpu() {
        // the baseline the rule improves on: the table does not fit beside the reserve, and the fill never comes back
        DeviceMap map = plan(llama(false), TIGHT).deviceMap();
        assertThat(map.deviceOf("model.embed_tokens.weight")).isEqualTo(CPU);
        assertThat(map.deviceOf("model.layers.0.proj.weight")).isEqualTo(CPU);
    }

    @Test
    void anEmbeddingTakesTheRoomTheLayersLeave() {
        // a 50-row table (12,800 B): after five layers and the reserve for a layer, 13,000 B are left
        DevicePlan plan = plan(llama(true, 50), LAYER + 5 * LAYER + 13_000);

        DeviceMap map = plan.deviceMap();
        assertThat(map.deviceOf("model.embed_tokens.weight")).isEqualTo(GPU);
        assertThat(map.deviceOf("model.layers.4.proj.weight")).isEqualTo(GPU);
        assertThat(map.deviceOf("model.layers.5.proj.weight")).isEqualTo(CPU);
        assertThat(plan.bytesPerDevice()).containsEntry(GPU, 5 * LAYER + 50 * H * 4);
    }

    @Test
    void whenTheModelFitsThePlanIsAcceleratesFill() {
        long all = 2 * TABLE + LAYERS * LAYER + H * 4;
        assertThat(plan(llama(true), all).deviceMap()).isEqualTo(plan(llama(false), all).deviceMap());
        assertThat(plan(llama(true), all).deviceMap().deviceOf("model.embed_tokens.weight")).isEqualTo(GPU);
    }

    @Test
    void anEmbeddingTiedToTheHeadIsFilledInTreeOrderAsAccelerateFillsIt() {
        Module tied = llama(true);
        TestModels.tie(tied, "lm_head.weight", "model.embed_tokens.weight");
        Module plain = llama(false);
        TestModels.tie(plain, "lm_head.weight", "model.embed_tokens.weight");
        assertThat(plan(tied, TIGHT).deviceMap()).isEqualTo(plan(plain, TIGHT).deviceMap());
    }

    @Test
    void aLookupInsideALayerStaysWithItsLayer() {
        Module withBias = llama(false);
        withBias.find("model.layers.0").addChild("relative_attention_bias", new Lookup(32, 4));
        Module plainBias = llama(false);
        Module bias = plainBias.find("model.layers.0").addChild("relative_attention_bias", new Module("Embedding"));
        bias.registerParameter("weight", TensorSlot.parameter(TensorSpec.of(DType.FLOAT32, 32, 4)));
        assertThat(plan(withBias, TIGHT).deviceMap()).isEqualTo(plan(plainBias, TIGHT).deviceMap());
    }
}

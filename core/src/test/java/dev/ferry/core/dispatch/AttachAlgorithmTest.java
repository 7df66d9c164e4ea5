package dev.ferry.core.dispatch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.dispatch.DispatchReport.Reason;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.ModuleTreeJson;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Which modules the unified attach algorithm hooks, on the fixtures' real module trees. */
class AttachAlgorithmTest {

    private static final Device GPU0 = Device.accelerator(0);
    private static final Device CPU = Device.cpu();
    private static final Device DISK = Device.disk();

    static Module llama() {
        return ModuleTreeJson.read(Fixtures.model("tiny-llama").resolve("module_tree.json"));
    }

    static Module gpt2() {
        return ModuleTreeJson.read(Fixtures.model("tiny-gpt2").resolve("module_tree.json"),
                Set.of(Set.of("transformer.wte.weight", "lm_head.weight")));
    }

    /** embed, layers 0..3, norm, rotary_emb, lm_head, with the given device per layer. */
    static DeviceMap llamaMap(Device... layers) {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", GPU0);
        for (int i = 0; i < layers.length; i++) {
            m.put("model.layers." + i, layers[i]);
        }
        m.put("model.norm", GPU0);
        m.put("model.rotary_emb", GPU0);
        m.put("lm_head", GPU0);
        return DeviceMap.of(m);
    }

    /** The plan for people: what most of these tests read. */
    static DispatchReport report(Module root, DeviceMap map, PreloadRule preload) {
        return Dispatcher.plan(root, map, preload).report();
    }

    static Set<String> hooked(Module root, DeviceMap map, String... preload) {
        return Set.copyOf(report(root, map, new PreloadRule(Set.of(preload))).hookedModules());
    }

    @Test
    void preloadDecoderLayerHooksNineModulesWhenLayerThreeIsOffloaded() {
        DispatchReport r = report(llama(), llamaMap(GPU0, GPU0, GPU0, CPU),
                new PreloadRule(Set.of("LlamaDecoderLayer")));
        assertThat(r.hookedModules()).containsExactly("", "model.embed_tokens", "model.layers.0", "model.layers.1",
                "model.layers.2", "model.layers.3", "model.norm", "model.rotary_emb", "lm_head");
    }

    @Test
    void withoutPreloadClassesFiftyThreeModulesAreHooked() {
        assertThat(hooked(llama(), llamaMap(GPU0, GPU0, GPU0, CPU))).hasSize(53);
    }

    @Test
    void withoutPreloadClassesEveryTensorOwnerOfAResidentLayerIsHooked() {
        Set<String> h = hooked(llama(), llamaMap(GPU0, GPU0, GPU0, CPU));
        assertThat(h).contains("model.layers.0.self_attn", "model.layers.0.self_attn.q_proj",
                "model.layers.0.mlp.down_proj", "model.layers.0.input_layernorm");
        assertThat(h).doesNotContain("model", "model.layers", "model.layers.0.mlp.act_fn");
    }

    @Test
    void residentBlocksObeyThePreloadRuleLikeOffloadedOnes() {
        Set<String> h = hooked(llama(), llamaMap(GPU0, GPU0, GPU0, GPU0), "LlamaDecoderLayer");
        assertThat(h).noneMatch(n -> n.startsWith("model.layers.0."));
        assertThat(h).hasSize(9);
    }

    @Test
    void everyBlockOffloadedWithPreloadHooksOnlyTheUnits() {
        DispatchReport r = report(llama(), llamaMap(CPU, CPU, DISK, DISK),
                new PreloadRule(Set.of("LlamaDecoderLayer")));
        assertThat(r.hookedCount()).isEqualTo(9);
        DispatchReport.Entry layer = r.entry("model.layers.2");
        assertThat(layer.hook().offload()).isTrue();
        assertThat(layer.hook().placeSubmodules()).isTrue();
        assertThat(layer.storage()).isEqualTo(DISK);
        assertThat(layer.executionDevice()).isEqualTo(GPU0);
    }

    @Test
    void offloadedLayerWithoutPreloadStreamsEachLinearSeparately() {
        DispatchReport r = report(llama(), llamaMap(GPU0, GPU0, GPU0, DISK), PreloadRule.none());
        assertThat(r.entry("model.layers.3.self_attn.q_proj").hook().offload()).isTrue();
        assertThat(r.entry("model.layers.3.self_attn").hook().offload()).isFalse();
        assertThat(r.entry("model.layers.3.self_attn").reason()).isEqualTo(Reason.EXECUTION_DEVICE);
        assertThat(r.entry("model.layers.3").hook().offload()).isFalse();
        assertThat(r.entry("model.layers.3").reason()).isEqualTo(Reason.IN_DEVICE_MAP);
    }

    @Test
    void preloadAttentionStopsHooksInsideAttentionOnly() {
        Set<String> h = hooked(llama(), llamaMap(GPU0, GPU0, CPU, DISK), "LlamaAttention");
        for (int i = 0; i < 4; i++) {
            assertThat(h).contains("model.layers." + i + ".self_attn", "model.layers." + i + ".mlp.up_proj");
            assertThat(h).doesNotContain("model.layers." + i + ".self_attn.q_proj");
        }
        // per layer: layer, self_attn, mlp, gate, up, down, 2 norms = 8; plus root and 4 top-level blocks
        assertThat(h).hasSize(4 * 8 + 5);
    }

    @Test
    void preloadMlpMakesTheMlpOneUnit() {
        DispatchReport r = report(llama(), llamaMap(GPU0, GPU0, GPU0, CPU),
                new PreloadRule(Set.of("LlamaMLP")));
        assertThat(r.entry("model.layers.3.mlp").reason()).isEqualTo(Reason.PRELOAD_UNIT);
        assertThat(r.entry("model.layers.3.mlp.up_proj").hooked()).isFalse();
        assertThat(r.entry("model.layers.3.mlp.up_proj").reasonText()).isEqualTo("below preload class LlamaMLP");
        assertThat(r.entry("model.layers.0.mlp.up_proj").hooked()).isFalse();
        assertThat(r.entry("model.layers.3.self_attn.q_proj").hooked()).isTrue();
    }

    @Test
    void gpt2BlocksAsPreloadUnitsWithTiedHead() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("transformer.wte", GPU0);
        m.put("transformer.wpe", GPU0);
        m.put("transformer.drop", GPU0);
        IntStream.range(0, 4).forEach(i -> m.put("transformer.h." + i, i < 2 ? GPU0 : CPU));
        m.put("transformer.ln_f", GPU0);
        m.put("lm_head", GPU0);
        DispatchReport r = report(gpt2(), DeviceMap.of(m), new PreloadRule(Set.of("GPT2Block")));
        assertThat(r.hookedModules()).containsExactly("", "transformer.wte", "transformer.wpe", "transformer.drop",
                "transformer.h.0", "transformer.h.1", "transformer.h.2", "transformer.h.3", "transformer.ln_f",
                "lm_head");
        assertThat(r.entry("transformer.h.2.attn.c_attn").reasonText()).isEqualTo("below preload class GPT2Block");
    }

    @Test
    void singleDeviceOffloadOfTheWholeModelStillHonoursPreload() {
        DispatchReport r = report(llama(), DeviceMap.of(Map.of("", DISK)),
                new PreloadRule(Set.of("LlamaDecoderLayer")));
        assertThat(r.mainDevice()).isEqualTo(CPU);
        // root (loads nothing itself but moves io), embed, norm, lm_head offload hooks, 4 units, and the
        // rotary embedding (buffers only) gets an offload hook too
        assertThat(r.hookedModules()).contains("", "model.layers.0", "model.embed_tokens", "lm_head")
                .noneMatch(n -> n.startsWith("model.layers.0."));
        assertThat(r.entry("").hook().ioSameDevice()).isTrue();
    }

    @Test
    void cpuAsTheOnlyDeviceIsResidentNotOffloaded() {
        DispatchReport r = report(llama(), DeviceMap.of(Map.of("", CPU)),
                new PreloadRule(Set.of("LlamaDecoderLayer")));
        assertThat(r.entry("").hook().offload()).isFalse();
        assertThat(r.entry("").hook().placeSubmodules()).isTrue();
        assertThat(r.entry("model.layers.1").reason()).isEqualTo(Reason.EXECUTION_DEVICE);
        assertThat(r.entry("model.layers.1.mlp").hooked()).isFalse();
    }

    @Test
    void rootNotInTheMapGetsAnIoHookOnTheMainDevice() {
        DispatchReport.Entry root = report(llama(), llamaMap(GPU0, GPU0, CPU, CPU), PreloadRule.none())
                .entry("");
        assertThat(root.reason()).isEqualTo(Reason.ROOT);
        assertThat(root.hook().executionDevice()).isEqualTo(GPU0);
        assertThat(root.hook().ioSameDevice()).isTrue();
        assertThat(root.hook().offload()).isFalse();
    }

    @Test
    void reportGivesEveryModuleInTreeOrderWithAReason() {
        Module root = llama();
        DispatchReport r = report(root, llamaMap(GPU0, GPU0, GPU0, CPU),
                new PreloadRule(Set.of("LlamaDecoderLayer")));
        List<String> names = new ArrayList<>();
        root.visit(m -> names.add(m.name()));
        assertThat(r.modules()).extracting(DispatchReport.Entry::name).containsExactlyElementsOf(names);
        assertThat(r.entry("model").reason()).isEqualTo(Reason.ABOVE_BLOCKS);
        assertThat(r.entry("model").executionDevice()).isNull();
        assertThat(r.entry("model.layers.3.mlp.act_fn").reasonText()).isEqualTo("below preload class LlamaDecoderLayer");
        assertThat(r.entry("model.layers.3").storage()).isEqualTo(CPU);
        assertThat(r.entry("model.layers.3").executionDevice()).isEqualTo(GPU0);
    }

    @Test
    void unhookedModuleWithoutTensorsSaysSo() {
        DispatchReport r = report(llama(), llamaMap(GPU0, GPU0, GPU0, CPU), PreloadRule.none());
        assertThat(r.entry("model.layers.0.mlp.act_fn").reason()).isEqualTo(Reason.OWNS_NO_TENSOR);
    }

    @Test
    void overlappingKeysResolveToTheLongestPrefix() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("", GPU0);
        m.put("model.layers.3", DISK);
        DispatchReport r = report(llama(), DeviceMap.of(m), new PreloadRule(Set.of("LlamaDecoderLayer")));
        assertThat(r.entry("model.layers.3").storage()).isEqualTo(DISK);
        assertThat(r.entry("model.layers.2").storage()).isEqualTo(GPU0);
        assertThat(r.entry("model.layers.3").hook().offload()).isTrue();
        assertThat(r.entry("lm_head").hooked()).isTrue();
    }

    @Test
    void unknownModuleInTheMapIsNamed() {
        Map<String, Device> m = new LinkedHashMap<>(llamaMap(GPU0, GPU0, GPU0, GPU0).entries());
        m.put("model.layers.9", CPU);
        assertThatThrownBy(() -> report(llama(), DeviceMap.of(m), PreloadRule.none()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("model.layers.9");
    }

    @Test
    void tensorsWithNoDeviceAreNamed() {
        Map<String, Device> m = new LinkedHashMap<>(llamaMap(GPU0, GPU0, GPU0, GPU0).entries());
        m.remove("lm_head");
        assertThatThrownBy(() -> report(llama(), DeviceMap.of(m), PreloadRule.none()))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("lm_head.weight");
    }

    @Test
    void aMapThatSplitsAPreloadUnitIsRejectedNamingIt() {
        Map<String, Device> m = new LinkedHashMap<>(llamaMap(GPU0, GPU0, GPU0).entries());
        m.put("model.layers.3.self_attn", GPU0);
        m.put("model.layers.3.mlp", CPU);
        m.put("model.layers.3.input_layernorm", GPU0);
        m.put("model.layers.3.post_attention_layernorm", GPU0);
        assertThatThrownBy(() -> report(llama(), DeviceMap.of(m), new PreloadRule(Set.of("LlamaDecoderLayer"))))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("model.layers.3").hasMessageContaining("LlamaDecoderLayer");
    }

    @Test
    void jsonReportHasExactlyTheDocumentedFields() throws Exception {
        String json = report(llama(), llamaMap(GPU0, GPU0, GPU0, CPU),
                new PreloadRule(Set.of("LlamaDecoderLayer"))).toJson();
        var tree = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json);
        assertThat(tree.fieldNames()).toIterable().containsExactly("modules");
        var first = tree.get("modules").get(0);
        assertThat(first.fieldNames()).toIterable()
                .containsExactly("name", "class", "device", "storage", "hooked", "reason");
        assertThat(first.get("name").asText()).isEmpty();
        assertThat(first.get("device").asInt()).isZero();
        var layer3 = tree.get("modules").findParents("name").stream()
                .filter(n -> n.get("name").asText().equals("model.layers.3")).findFirst().orElseThrow();
        assertThat(layer3.get("storage").asText()).isEqualTo("cpu");
        assertThat(layer3.get("device").asInt()).isZero();
        assertThat(tree.get("modules")).hasSize(59);
    }

    @Test
    void tableListsEveryModuleAndTheHookCount() {
        String table = report(llama(), llamaMap(GPU0, GPU0, GPU0, CPU),
                new PreloadRule(Set.of("LlamaDecoderLayer"))).toTable();
        assertThat(table.lines().count()).isEqualTo(59 + 3);
        assertThat(table).contains("9 of 59 modules hooked; main device gpu0");
    }

    @Test
    void reportSaysWhatStaysResidentAndWhatIsStreamedPerForward() {
        DispatchReport.Memory m = report(llama(), llamaMap(GPU0, GPU0, GPU0, DISK),
                new PreloadRule(Set.of("LlamaDecoderLayer"))).memory();
        long layer = 4L * (64 * 64 + 32 * 64 + 32 * 64 + 64 * 64 + 3 * 128 * 64 + 2 * 64);
        long embedding = 4L * 256 * 64;
        long rest = 4L * 64 + 4L * 16; // model.norm, rotary_emb's two inv_freq buffers
        assertThat(m.resident()).containsExactly(Map.entry(GPU0, 2 * embedding + 3 * layer + rest));
        assertThat(m.offloaded()).containsExactly(Map.entry(DISK, layer));
        assertThat(m.largestStreamedUnit()).isEqualTo("model.layers.3");
        assertThat(m.largestStreamedBytes()).isEqualTo(layer);
        assertThat(m.describe()).isEqualTo("resident gpu0 561.81 KiB; offloaded, streamed per forward disk 144.50 KiB "
                + "(largest unit streamed at once: model.layers.3, 144.50 KiB)");
    }

    @Test
    void withoutPreloadTheLargestStreamedUnitIsOneLinear() {
        DispatchReport.Memory m = report(llama(), llamaMap(GPU0, GPU0, GPU0, DISK), PreloadRule.none())
                .memory();
        assertThat(m.largestStreamedBytes()).isEqualTo(4L * 128 * 64);
        assertThat(m.largestStreamedUnit()).isEqualTo("model.layers.3.mlp.down_proj");
    }
}

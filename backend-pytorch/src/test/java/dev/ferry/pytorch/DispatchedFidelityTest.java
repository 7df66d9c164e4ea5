package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.WeightsStore;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Dispatched with the core's attach algorithm on this CPU-only machine (main device cpu): resident blocks on the
 * CPU and offloaded blocks streamed per forward from a disk offload folder, from the memory-mapped checkpoint,
 * or from host memory; with and without preload classes; with and without the KV cache. All equal golden.json.
 */
class DispatchedFidelityTest {

    static final Device CPU = Device.cpu();
    static final Device DISK = Device.disk();

    static DjlBackend backend;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    enum Store { OFFLOAD_FOLDER, CHECKPOINT, HOST_MEMORY }

    /**
     * The families added over the shared blocks, dispatched from a disk offload folder with every module hooked (no
     * preload class); with their block class preloaded they are loaded through the builder in FerryBuilderTest.
     */
    static final List<String> FAMILIES = List.of("tiny-qwen3", "tiny-gemma2", "tiny-gemma3", "tiny-phi3",
            "tiny-phi3-longrope", "tiny-mistral-sliding", "tiny-qwen2-sliding");

    static Stream<Arguments> cases() {
        List<Arguments> out = new ArrayList<>();
        for (String fixture : FAMILIES) {
            out.add(Arguments.of(fixture, Set.<String>of(), Store.OFFLOAD_FOLDER));
        }
        for (String fixture : List.of("tiny-llama", "tiny-gpt2")) {
            String block = fixture.equals("tiny-llama") ? "LlamaDecoderLayer" : "GPT2Block";
            for (Set<String> preload : List.of(Set.<String>of(), Set.of(block))) {
                for (Store store : Store.values()) {
                    out.add(Arguments.of(fixture, preload, store));
                }
            }
        }
        return out.stream();
    }

    /** transformers' class of {@code model.layers.0}, from the fixture's module_tree.json. */
    static String blockClass(String fixture) {
        try {
            for (var m : new com.fasterxml.jackson.databind.ObjectMapper()
                    .readTree(Fixtures.model(fixture).resolve("module_tree.json").toFile())) {
                if (m.get("name").asText().equals("model.layers.0")) {
                    return m.get("class").asText();
                }
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        throw new IllegalStateException(fixture + " has no model.layers.0");
    }

    static DeviceMap mixedMap(String fixture) {
        Map<String, Device> m = new LinkedHashMap<>();
        if (!fixture.equals("tiny-gpt2")) {
            m.put("model.embed_tokens", CPU);
            m.put("model.layers.0", CPU);
            m.put("model.layers.1", DISK);
            m.put("model.layers.2", CPU);
            m.put("model.layers.3", DISK);
            m.put("model.norm", CPU);
            m.put("model.rotary_emb", CPU);
            m.put("lm_head", DISK);
        } else {
            m.put("transformer.wte", CPU);
            m.put("transformer.wpe", DISK);
            m.put("transformer.drop", CPU);
            m.put("transformer.h.0", DISK);
            m.put("transformer.h.1", CPU);
            m.put("transformer.h.2", DISK);
            m.put("transformer.h.3", CPU);
            m.put("transformer.ln_f", DISK);
            m.put("lm_head", CPU);
        }
        return DeviceMap.of(m);
    }

    @ParameterizedTest(name = "{0} preload {1} from {2}")
    @MethodSource("cases")
    void mixedResidentAndOffloadedBlocksMatchTransformers(String fixture, Set<String> preload, Store kind) {
        Golden golden = Golden.of(fixture);
        DeviceMap map = mixedMap(fixture);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(fixture))) {
            CausalLM model = ModelFamilies.build(Fixtures.model(fixture), backend);
            ModelFamilies.load(model, ckpt, backend, CPU);
            WeightsStore store = switch (kind) {
                case OFFLOAD_FOLDER -> OffloadFolder.write(tmp.resolve("offload"), ckpt, offloadedKeys(model, map, ckpt));
                case CHECKPOINT -> ckpt;
                case HOST_MEMORY -> null; // the dispatcher copies the loaded tensors to host memory
            };
            DispatchOptions options = DispatchOptions.of(map).withPreloadClasses(preload).withOffloadStore(store);
            DispatchReport report = new Dispatcher(backend).dispatch(model, options);
            assertThat(report.mainDevice()).isEqualTo(CPU);

            Generator gen = new Generator(model, backend, CPU);
            double diff = golden.maxAbsDiff(gen.logits(golden.inputIds()));
            System.out.printf("%s preload %s from %s: max |logit - golden| = %.3g%n", fixture, preload, kind, diff);
            assertThat(diff).isLessThan(FidelityTest.TOLERANCE);
            FidelityTest.assertGreedyAsGolden(gen, fixture, golden);
            // offloaded weights are released after every forward
            String offloaded = fixture.equals("tiny-gpt2") ? "transformer.h.2.mlp.c_fc" : "model.layers.3.mlp.down_proj";
            assertThat(model.find(offloaded).tensor("weight").isMaterialised()).isFalse();
            Dispatcher.remove(model);
            if (store instanceof OffloadFolder f) {
                f.close();
            }
        }
    }

    static List<String> offloadedKeys(Module model, DeviceMap map, WeightsStore ckpt) {
        List<String> keys = new ArrayList<>();
        map.entries().forEach((name, device) -> {
            if (device.equals(DISK)) {
                Module m = model.find(name);
                m.stateDict().keySet().forEach(rel -> {
                    String full = name + "." + rel;
                    if (ckpt.contains(full)) {
                        keys.add(full);
                    }
                });
            }
        });
        return keys;
    }

    @Test
    void anAbsentAcceleratorIsAnErrorAtPlanningTimeNotACrash() {
        CausalLM model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
        DeviceMap map = DeviceMap.of(Map.of("", Device.accelerator(0)));
        assertThat(backend.isAvailable(Device.accelerator(0))).isFalse();
        assertThatThrownBy(() -> new Dispatcher(backend).dispatch(model, DispatchOptions.of(map)))
                .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("gpu0");
        assertThat(model.hook()).isNull();
    }
}

package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The mixture-of-experts families against transformers' goldens on the CPU: undispatched, and dispatched with the
 * experts away from the dense weights (in host memory, on disk read in place, in an offload folder), each expert
 * fetched as routed. The checkpoints are in the per-expert layout {@code save_pretrained} writes (Mixtral's under
 * transformers 4.x names).
 */
class MoeFidelityTest {

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

    static CausalLM load(String fixture) {
        CausalLM model = ModelFamilies.build(Fixtures.model(fixture), backend);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(fixture))) {
            ModelFamilies.load(model, ckpt, backend, CPU);
        }
        return model;
    }

    static String layerClass(String fixture) {
        return fixture.equals("tiny-mixtral") ? "MixtralDecoderLayer" : "Qwen3MoeDecoderLayer";
    }

    /** Logits within 1e-4 and greedy tokens exact, with the KV cache (and without it when {@code noCacheToo}). */
    static void assertGolden(String fixture, CausalLM model) {
        assertGolden(fixture, model, false);
    }

    static void assertGolden(String fixture, CausalLM model, boolean noCacheToo) {
        Golden golden = Golden.of(fixture);
        Generator gen = new Generator(model, backend, CPU);
        double diff = golden.maxAbsDiff(gen.logits(golden.inputIds()));
        System.out.printf("%s: max |logit - golden| = %.3g%n", fixture, diff);
        assertThat(diff).isLessThan(FidelityTest.TOLERANCE);
        assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8))).containsExactly(golden.greedy());
        if (noCacheToo) {
            assertThat(gen.generate(golden.inputIds(), GenerationConfig.greedy(8).withCache(false)))
                    .containsExactly(golden.greedy());
        }
    }

    /** Everything on the CPU but the experts of layers 0-2 (the dense layer 3 of tiny-qwen3-moe has none). */
    static DeviceMap expertsAway(Device where) {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("", CPU);
        for (int l = 0; l < 3; l++) {
            m.put("model.layers." + l + ".mlp.experts", where);
        }
        return DeviceMap.of(m);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void undispatchedLogitsAndGreedyTokensMatchTransformers(String fixture) {
        assertGolden(fixture, load(fixture), true);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void expertsInHostMemoryFetchedAsRoutedMatchTransformers(String fixture) {
        CausalLM model = load(fixture);
        // disk storage with no store given: the dispatcher keeps the loaded experts in host memory and streams them
        DispatchOptions options = DispatchOptions.of(expertsAway(DISK)).withPreloadClasses(Set.of(layerClass(fixture)));
        DispatchReport report = new Dispatcher(backend).dispatch(model, options);

        assertThat(report.entry("model.layers.1.mlp.experts.1").reason())
                .isEqualTo(DispatchReport.Reason.ROUTED_EXPERT);
        assertGolden(fixture, model);
        assertThat(model.find("model.layers.1.mlp.experts.1").namedTensors().values())
                .noneMatch(s -> s.isMaterialised());
        Dispatcher.remove(model);
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void expertsOnDiskReadInPlaceFromTheCheckpointMatchTransformers(String fixture) {
        Path dir = Fixtures.model(fixture);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            CausalLM model = ModelFamilies.build(dir, backend);
            DeviceMap map = expertsAway(DISK);
            CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(model, ckpt, CheckpointDispatcher.Options.of(map).withDispatch(
                            DispatchOptions.of(map).withPreloadClasses(Set.of(layerClass(fixture)))));

            assertThat(result.unexpectedKeys()).isEmpty();
            assertThat(result.diskOffloadBytes()).isEqualTo(result.report().memory().routed().storedBytes());
            assertGolden(fixture, model);
            Dispatcher.remove(model);
            result.close();
        }
    }

    @Test
    void expertsInAnOffloadFolderAndTransformers4MapNamesMatchTransformers() {
        Path dir = Fixtures.model("tiny-mixtral");
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            CausalLM model = ModelFamilies.build(dir, backend);
            DeviceMap map = DeviceMap.of(Map.of("", CPU, "model.layers.0.block_sparse_moe.experts", DISK,
                    "model.layers.2.block_sparse_moe.experts.3", DISK));
            CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(model, ckpt, CheckpointDispatcher.Options.of(map)
                            .withDispatch(DispatchOptions.of(map).withPreloadClasses(Set.of("MixtralDecoderLayer")))
                            .withOffloadDir(tmp.resolve("offload")));

            // the report shows transformers 5's names
            assertThat(result.report().entry("model.layers.2.mlp.experts.3").reason())
                    .isEqualTo(DispatchReport.Reason.ROUTED_EXPERT);
            assertThat(result.report().memory().routed().experts()).isEqualTo(4 + 1);
            assertThat(result.offloadFolder()).isNotNull();
            assertGolden("tiny-mixtral", model);
            Dispatcher.remove(model);
            result.close();
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void anOffloadedDecoderLayerStreamsItsDenseWeightsAndFetchesItsExpertsAsRouted(String fixture) {
        CausalLM model = load(fixture);
        DeviceMap map = DeviceMap.of(Map.of("", CPU, "model.layers.1", DISK));
        DispatchReport report = new Dispatcher(backend).dispatch(model,
                DispatchOptions.of(map).withPreloadClasses(Set.of(layerClass(fixture))));

        assertThat(report.entry("model.layers.1").reasonText()).contains("dense weights; apart: mlp.experts");
        assertGolden(fixture, model);
        Dispatcher.remove(model);
    }
}

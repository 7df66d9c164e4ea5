package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * tiny-llama and tiny-gpt2 run partitioned under maps mixing resident and offloaded (CPU memory, disk)
 * blocks, with and without preload classes: logits equal the whole-model ORT run and golden.json, and greedy
 * generation (re-running the prefix: these exports have no KV cache) gives golden.json's tokens.
 *
 * <p>This ORT build has only the CPU provider, so accelerator 0 is assigned a CPU provider instance: the plan
 * (resident vs offloaded, sessions per partition) is the one a GPU would get.
 */
class CausalLmFidelityTest {

    static final Device GPU0 = Device.accelerator(0);
    static final OnnxOptions OPTIONS = OnnxOptions.defaults()
            .withDevices(OnnxDevices.of(Map.of(0, ExecutionProvider.cpu()))).withIntraOpThreads(1);

    static Map<String, Device> llamaMap() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", GPU0);
        m.put("model.rotary_emb", GPU0);
        m.put("model.layers.0", GPU0);
        m.put("model.layers.1", Device.cpu());
        m.put("model.layers.2", Device.disk());
        m.put("model.layers.3", GPU0);
        m.put("model.norm", Device.cpu());
        m.put("lm_head", GPU0);
        return m;
    }

    static Map<String, Device> gpt2Map() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("transformer.wte", GPU0);
        m.put("transformer.wpe", GPU0);
        m.put("transformer.h.0", Device.disk());
        m.put("transformer.h.1", GPU0);
        m.put("transformer.h.2", Device.cpu());
        m.put("transformer.h.3", GPU0);
        m.put("transformer.ln_f", GPU0);
        m.put("lm_head", Device.disk());
        return m;
    }

    /** Each fixture with and without preload classes, each with prefetch of offloaded partitions off and on. */
    static Stream<Arguments> cases() {
        return Stream.of(0, 1).flatMap(prefetch -> Stream.of(
                Arguments.of("tiny-llama", llamaMap(), Set.of("LlamaDecoderLayer"), prefetch),
                Arguments.of("tiny-llama", llamaMap(), Set.of(), prefetch),
                Arguments.of("tiny-gpt2", gpt2Map(), Set.of("GPT2Block"), prefetch),
                Arguments.of("tiny-gpt2", gpt2Map(), Set.of(), prefetch)));
    }

    @ParameterizedTest(name = "{0} preload={2} prefetch={3}")
    @MethodSource("cases")
    void partitionedLogitsEqualWholeModelAndGolden(String fixture, Map<String, Device> map, Set<String> preload,
                                                   int prefetch) {
        Path file = TestModels.fixture(fixture, "model.onnx");
        JsonNode golden = TestModels.json(TestModels.fixture(fixture, "golden.json"));
        long[] ids = longs(golden.get("input_ids"));
        float[] goldenLogits = floats(golden.get("logits"));

        OnnxModel model = OnnxModel.load(file);
        try (OnnxTensor in = Ort.ids(ids);
             OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(model, DeviceMap.of(map), new PreloadRule(preload),
                     OPTIONS.withPrefetchPartitions(prefetch))) {
            float[] whole = Ort.whole(file, Map.of("input_ids", in), "logits");
            float[] logits;
            try (OnnxRunResult r = d.run(Map.of("input_ids", in))) {
                logits = r.floats("logits");
            }
            // a second run uses the cached optimised graphs for the offloaded partitions
            float[] again;
            try (OnnxRunResult r = d.run(Map.of("input_ids", in))) {
                again = r.floats("logits");
            }
            double vsWhole = Ort.maxAbsDiff(logits, whole);
            double vsGolden = Ort.maxAbsDiff(logits, goldenLogits);
            OnnxDispatchReport report = d.report();
            System.out.printf("%s preload=%s prefetch=%d: max |partitioned - whole| = %.3g, "
                    + "max |partitioned - golden| = %.3g%n%s", fixture, preload, prefetch, vsWhole, vsGolden, report);
            assertThat(vsWhole).isLessThanOrEqualTo(1e-5);
            assertThat(vsGolden).isLessThanOrEqualTo(1e-4);
            assertThat(again).containsExactly(logits);
            assertThat(report.core()).isNotNull(); // the core's plan of the same tree and map
            assertThat(report.core().modules()).hasSize(d.tree().root().modules().size());
            assertThat(report.partitions()).anyMatch(PartitionReport::offloaded);
            assertThat(report.partitions()).anyMatch(p -> !p.offloaded());
            long offloaded = report.partitions().stream().filter(PartitionReport::offloaded).count();
            // every offloaded partition: one session at dispatch (optimising) + one per run; with prefetch, the
            // next run's first offloaded partition is already prepared
            assertThat(report.prefetch().prepared()).isEqualTo(prefetch);
            assertThat(report.sessionsCreated())
                    .isEqualTo(report.residentSessions() + 3 * (int) offloaded + report.prefetch().prepared());
        }
    }

    @ParameterizedTest(name = "{0} preload={2} prefetch={3}")
    @MethodSource("cases")
    void greedyGenerationGivesGoldenTokens(String fixture, Map<String, Device> map, Set<String> preload,
                                           int prefetch) {
        Path file = TestModels.fixture(fixture, "model.onnx");
        JsonNode golden = TestModels.json(TestModels.fixture(fixture, "golden.json"));
        List<Long> seq = new ArrayList<>();
        golden.get("input_ids").forEach(t -> seq.add(t.asLong()));
        List<Long> generated = new ArrayList<>();
        try (OnnxDispatchedModel d = OnnxDispatchedModel.dispatch(OnnxModel.load(file),
                DeviceMap.of(map), new PreloadRule(preload), OPTIONS.withPrefetchPartitions(prefetch))) {
            for (int step = 0; step < golden.get("greedy_new_tokens").size(); step++) {
                long[] ids = seq.stream().mapToLong(Long::longValue).toArray();
                try (OnnxTensor in = Ort.ids(ids); OnnxRunResult r = d.run(Map.of("input_ids", in))) {
                    float[] logits = r.floats("logits");
                    int vocab = logits.length / ids.length;
                    int best = 0;
                    for (int v = 1; v < vocab; v++) {
                        if (logits[(ids.length - 1) * vocab + v] > logits[(ids.length - 1) * vocab + best]) {
                            best = v;
                        }
                    }
                    seq.add((long) best);
                    generated.add((long) best);
                }
            }
        }
        List<Long> want = new ArrayList<>();
        golden.get("greedy_new_tokens").forEach(t -> want.add(t.asLong()));
        assertThat(generated).isEqualTo(want);
    }

    static long[] longs(JsonNode a) {
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = a.get(i).asLong();
        }
        return out;
    }

    static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = (float) a.get(i).asDouble();
        }
        return out;
    }
}

package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.onnx.OnnxDispatchReport.OrtObjects;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * One dispatched tiny-llama export run by eight threads at once, each making greedy generations of golden.json's
 * 8 tokens (re-running the prefix: the export has no KV cache): every generation gives the golden tokens, with
 * every block resident or with layers 1 and 3 on disk (a session per run, prepared ahead), and no session,
 * weight tensor or result is left open. Fewer calls than the PyTorch backend's test (8 × 8): each offloaded
 * partition makes a session per run.
 */
class ConcurrentRunTest {

    static final int THREADS = 8;
    static final int CALLS = 8;
    static final Device GPU0 = Device.accelerator(0);
    static final OnnxModuleTree LLAMA = PrefetchTest.LLAMA;
    static final JsonNode GOLDEN = PrefetchTest.GOLDEN;

    /**
     * Every block resident on accelerator 0 (a CPU provider instance here) but the layers in {@code onDisk}. Two
     * layers on disk, so that the prefetcher prepares one while the other runs (a single offloaded partition is
     * never prepared ahead).
     */
    static OnnxDispatchedModel dispatch(Set<Integer> onDisk, int prefetch) {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", GPU0);
        m.put("model.rotary_emb", GPU0);
        for (int i = 0; i < 4; i++) {
            m.put("model.layers." + i, onDisk.contains(i) ? Device.disk() : GPU0);
        }
        m.put("model.norm", GPU0);
        m.put("lm_head", GPU0);
        return OnnxDispatchedModel.dispatch(LLAMA, DeviceMap.of(m), new PreloadRule(Set.of("LlamaDecoderLayer")),
                CausalLmFidelityTest.OPTIONS.withPrefetchPartitions(prefetch));
    }

    /** Greedy decoding of golden.json's number of new tokens after its prompt. */
    static List<Long> generate(OnnxDispatchedModel d) {
        List<Long> seq = new ArrayList<>();
        GOLDEN.get("input_ids").forEach(t -> seq.add(t.asLong()));
        List<Long> generated = new ArrayList<>();
        for (int step = 0; step < GOLDEN.get("greedy_new_tokens").size(); step++) {
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
        return generated;
    }

    static List<Long> goldenTokens() {
        List<Long> want = new ArrayList<>();
        GOLDEN.get("greedy_new_tokens").forEach(t -> want.add(t.asLong()));
        return want;
    }

    /** {@link #THREADS} threads released together, each making {@code calls} generations; all results. */
    static List<List<Long>> generateFromEightThreads(OnnxDispatchedModel d, int calls) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch go = new CountDownLatch(1);
        try {
            List<Future<List<List<Long>>>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                futures.add(pool.submit(() -> {
                    go.await();
                    List<List<Long>> out = new ArrayList<>();
                    for (int i = 0; i < calls; i++) {
                        out.add(generate(d));
                    }
                    return out;
                }));
            }
            go.countDown();
            List<List<Long>> all = new ArrayList<>();
            for (Future<List<List<Long>>> f : futures) {
                all.addAll(f.get(5, TimeUnit.MINUTES));
            }
            return all;
        } finally {
            pool.shutdownNow();
            pool.awaitTermination(5, TimeUnit.MINUTES); // none may still run when the model is closed
        }
    }

    @Test
    void eightThreadsGetGoldenTokensWhenEveryBlockIsResident() throws Exception {
        try (OnnxDispatchedModel d = dispatch(Set.of(), 0)) {
            assertThat(generateFromEightThreads(d, CALLS)).hasSize(THREADS * CALLS)
                    .allSatisfy(g -> assertThat(g).isEqualTo(goldenTokens()));
        }
    }

    @Test
    void eightThreadsGetGoldenTokensWithLayers1And3OnDiskAndPrefetch() throws Exception {
        try (OnnxDispatchedModel d = dispatch(Set.of(1, 3), 1)) {
            assertThat(generateFromEightThreads(d, CALLS)).hasSize(THREADS * CALLS)
                    .allSatisfy(g -> assertThat(g).isEqualTo(goldenTokens()));
        }
    }

    @Test
    void eightThreadsLeaveNoSessionTensorOrResultOpen() throws Exception {
        OnnxDispatchedModel d = dispatch(Set.of(1, 3), 1);
        try {
            generate(d); // steady state: resident sessions, and layer 1's session prepared for the next run
            OrtObjects steady = d.report().ortObjects();
            generateFromEightThreads(d, CALLS / 2);
            OrtObjects now = d.report().ortObjects();
            assertThat(now.results().open()).isZero();
            assertThat(now.sessions().open()).isEqualTo(steady.sessions().open());
            assertThat(now.weightTensors().open()).isEqualTo(steady.weightTensors().open());
        } finally {
            d.close();
        }
        assertThat(d.report().ortObjects().noneOpen()).as("%s", d.report().ortObjects()).isTrue();
    }
}

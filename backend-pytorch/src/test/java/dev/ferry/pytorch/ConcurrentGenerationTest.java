package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.OffloadFolder;
import dev.ferry.core.weights.SafetensorsCheckpoint;
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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One dispatched tiny-llama called by eight threads at once, 64 greedy generations each (8 new tokens, KV cache
 * on), through one shared {@link Generator}: every call gives golden.json's tokens, whether every block is
 * resident or layers are streamed from a disk offload folder (with the prefetcher on), and no native array is
 * left behind. Before the hooks of a dispatch shared a forward lock, the disk case crashed the JVM (SIGSEGV in
 * libtorch: one thread's hook freed the weights another thread's forward was reading) and the resident case
 * failed with {@code NoSuchElementException} from a hook's per-call stack.
 */
class ConcurrentGenerationTest {

    static final int THREADS = 8;
    static final int CALLS = 64;
    static final Device CPU = Device.cpu();

    DjlBackend backend;
    SafetensorsCheckpoint checkpoint;
    OffloadFolder folder;
    Golden golden;

    @TempDir
    Path tmp;

    @BeforeEach
    void start() {
        backend = new DjlBackend();
        checkpoint = SafetensorsCheckpoint.open(Fixtures.model("tiny-llama"));
        golden = Golden.of("tiny-llama");
    }

    @AfterEach
    void stop() {
        if (folder != null) {
            folder.close();
        }
        checkpoint.close();
        backend.close();
    }

    /** Every block on the CPU (this machine's main device) but the layers in {@code onDisk}. */
    static DeviceMap map(Set<Integer> onDisk) {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", CPU);
        for (int i = 0; i < 4; i++) {
            m.put("model.layers." + i, onDisk.contains(i) ? Device.disk() : CPU);
        }
        m.put("model.norm", CPU);
        m.put("model.rotary_emb", CPU);
        m.put("lm_head", CPU);
        return DeviceMap.of(m);
    }

    /** tiny-llama loaded on the CPU and dispatched under {@link #map}, the disk layers read from an offload folder. */
    CausalLM dispatched(Set<Integer> onDisk, int prefetch) {
        CausalLM model = ModelFamilies.build(Fixtures.model("tiny-llama"), backend);
        ModelFamilies.load(model, checkpoint, backend, CPU);
        DeviceMap map = map(onDisk);
        DispatchOptions options = DispatchOptions.of(map).withPreloadClasses(Set.of("LlamaDecoderLayer"))
                .withPrefetchBlocks(prefetch);
        if (!onDisk.isEmpty()) {
            folder = OffloadFolder.write(tmp.resolve("offload"), checkpoint,
                    DispatchedFidelityTest.offloadedKeys(model, map, checkpoint));
            options = options.withOffloadStore(folder);
        }
        new Dispatcher(backend).dispatch(model, options);
        return model;
    }

    /** {@link #THREADS} threads released together, each making {@code calls} greedy generations; all results. */
    List<long[]> generateFromEightThreads(Generator gen, int calls) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(THREADS);
        CountDownLatch go = new CountDownLatch(1);
        try {
            List<Future<List<long[]>>> futures = new ArrayList<>();
            for (int t = 0; t < THREADS; t++) {
                futures.add(pool.submit(() -> {
                    go.await();
                    List<long[]> out = new ArrayList<>();
                    for (int i = 0; i < calls; i++) {
                        out.add(gen.generate(golden.inputIds(), GenerationConfig.greedy(golden.greedy().length)));
                    }
                    return out;
                }));
            }
            go.countDown();
            List<long[]> all = new ArrayList<>();
            for (Future<List<long[]>> f : futures) {
                all.addAll(f.get(5, TimeUnit.MINUTES));
            }
            return all;
        } finally {
            // a failed call must not leave the others running into the teardown, which frees the backend
            pool.shutdownNow();
            pool.awaitTermination(5, TimeUnit.MINUTES);
        }
    }

    @Test
    void eightThreadsGetGoldenTokensWhenEveryBlockIsResident() throws Exception {
        CausalLM model = dispatched(Set.of(), 0);
        List<long[]> results = generateFromEightThreads(new Generator(model, backend, CPU), CALLS);
        assertThat(results).hasSize(THREADS * CALLS).allSatisfy(r -> assertThat(r).containsExactly(golden.greedy()));
    }

    /**
     * Layer 1 is on disk too: with a single offloaded block the prefetcher fetches it once, at dispatch; with two,
     * each forward fetches the other one on the background thread while it runs.
     */
    @Test
    void eightThreadsGetGoldenTokensWithLayers1And3OnDiskAndPrefetch() throws Exception {
        CausalLM model = dispatched(Set.of(1, 3), 1);
        List<long[]> results = generateFromEightThreads(new Generator(model, backend, CPU), CALLS);
        assertThat(results).hasSize(THREADS * CALLS).allSatisfy(r -> assertThat(r).containsExactly(golden.greedy()));
        assertThat(model.find("model.layers.3.mlp.up_proj").tensor("weight").isMaterialised())
                .as("layer 3's streamed weights are released after the last forward").isFalse();
    }

    /** Prefetch off, so that no block fetched ahead on the background thread blurs the count. */
    @Test
    void eightThreadsLeaveNoNativeArrayBehind() throws Exception {
        CausalLM model = dispatched(Set.of(3), 0);
        int before = backend.liveArrayCount();
        List<long[]> results = generateFromEightThreads(new Generator(model, backend, CPU), CALLS / 8);
        assertThat(results).allSatisfy(r -> assertThat(r).containsExactly(golden.greedy()));
        assertThat(backend.liveArrayCount()).isEqualTo(before);
    }
}

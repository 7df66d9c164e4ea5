package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.pytorch.jni.JniUtils;
import ai.djl.util.cuda.CudaUtils;
import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.module.Module;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.DTypeConversion;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.SafetensorsWriter;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The fixtures on CUDA: golden tokens and logits with blocks resident on gpu0, offloaded to CPU memory (page-locked)
 * and to disk, with and without preload classes, with and without the KV cache; tied weights across gpu0 and the CPU
 * and across two GPUs; fp16 and bf16 checkpoints; GPU memory back to where it started. Skipped where libtorch sees
 * no GPU (every CI machine): the GPU harness ({@code gpu/harness.sh}) runs them on the GPU machine.
 */
@Tag("gpu")
class CudaGoldenTest {

    static final Device GPU0 = Device.accelerator(0);
    static final Device GPU1 = Device.accelerator(1);
    static final Device CPU = Device.cpu();
    static final Device DISK = Device.disk();
    /** Same tolerance as on the CPU: float32 kernels of another device, same math. */
    static final double TOLERANCE = 1e-4;

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

    static void requireGpus(int n) {
        assumeTrue(backend.gpuCount() >= n, "needs " + n + " CUDA GPU(s); libtorch sees " + backend.gpuCount());
    }

    static String blockOf(String fixture) {
        return fixture.equals("tiny-llama") ? "LlamaDecoderLayer" : "GPT2Block";
    }

    /** Every block in every place: embeddings and a layer on gpu0, layers in CPU memory and on disk. */
    static DeviceMap mixedMap(String fixture) {
        Map<String, Device> m = new LinkedHashMap<>();
        if (!fixture.equals("tiny-gpt2")) {
            m.put("model.embed_tokens", GPU0);
            m.put("model.layers.0", GPU0);
            m.put("model.layers.1", CPU);
            m.put("model.layers.2", DISK);
            m.put("model.layers.3", CPU);
            m.put("model.norm", GPU0);
            m.put("model.rotary_emb", GPU0);
            m.put("lm_head", DISK);
        } else {
            m.put("transformer.wte", GPU0);
            m.put("transformer.wpe", CPU);
            m.put("transformer.drop", GPU0);
            m.put("transformer.h.0", GPU0);
            m.put("transformer.h.1", CPU);
            m.put("transformer.h.2", DISK);
            m.put("transformer.h.3", CPU);
            m.put("transformer.ln_f", DISK);
            m.put("lm_head", CPU); // tied to wte, resident on gpu0: shared there, not streamed
        }
        return DeviceMap.of(m);
    }

    static Stream<Arguments> placements() {
        List<Arguments> out = new ArrayList<>();
        for (String fixture : List.of("tiny-llama", "tiny-gpt2")) {
            for (boolean mixed : List.of(false, true)) {
                for (Set<String> preload : List.of(Set.<String>of(), Set.of(blockOf(fixture)))) {
                    out.add(Arguments.of(fixture, mixed ? "gpu0/cpu/disk" : "all on gpu0", preload));
                }
            }
        }
        return out.stream();
    }

    record Loaded(CausalLM model, CheckpointDispatcher.Result result, SafetensorsCheckpoint checkpoint)
            implements AutoCloseable {
        /** Removes the dispatch and drops the model: its tensors (put back where they were before) are freed. */
        @Override
        public void close() {
            Dispatcher.remove(model);
            result.close();
            checkpoint.close();
            model.namedTensors().values().forEach(dev.ferry.core.module.TensorSlot::release);
        }
    }

    static Loaded load(Path dir, CausalLM model, DeviceMap map, Set<String> preload, int prefetch) {
        return load(backend, dir, model, map, preload, prefetch);
    }

    /** As above, on {@code backend} (a test class's own, open while this class's is closed). */
    static Loaded load(DjlBackend backend, Path dir, CausalLM model, DeviceMap map, Set<String> preload,
                       int prefetch) {
        SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir);
        CheckpointDispatcher loader = new CheckpointDispatcher(backend, new Dispatcher(backend));
        CheckpointDispatcher.Result r = loader.loadAndDispatch(model, ckpt, CheckpointDispatcher.Options.of(map)
                .withDispatch(DispatchOptions.of(map).withPreloadClasses(preload).withPrefetchBlocks(prefetch)));
        return new Loaded(model, r, ckpt);
    }

    /**
     * Loads {@code fixture} dispatched by {@code map}: the logits equal golden.json's, and so do the greedy tokens,
     * with the KV cache (kept on the GPU) and without. Returns the largest logit difference.
     */
    static double assertGolden(String fixture, DeviceMap map, Set<String> preload) {
        return assertGolden(fixture, map, preload, model -> { });
    }

    /** As above, then {@code alsoCheck} looks at the dispatched model before it is closed. */
    static double assertGolden(String fixture, DeviceMap map, Set<String> preload,
                               java.util.function.Consumer<CausalLM> alsoCheck) {
        Golden golden = Golden.of(fixture);
        Path dir = Fixtures.model(fixture);
        try (Loaded l = load(dir, ModelFamilies.build(dir, backend), map, preload, 1)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            double diff = golden.maxAbsDiff(gen.logits(golden.inputIds()));
            assertThat(diff).isLessThan(TOLERANCE);
            FidelityTest.assertGreedyAsGolden(gen, fixture, golden);
            alsoCheck.accept(l.model());
            return diff;
        }
    }

    @ParameterizedTest(name = "{0} {1} preload {2}")
    @MethodSource("placements")
    void goldenTokensAndLogitsOnCuda(String fixture, String placement, Set<String> preload) {
        requireGpus(1);
        DeviceMap map = placement.equals("all on gpu0") ? DeviceMap.single(GPU0) : mixedMap(fixture);
        double diff = assertGolden(fixture, map, preload);
        System.out.printf("cuda %s %s preload %s: max |logit - golden| = %.3g%n", fixture, placement, preload, diff);
    }

    static Stream<Arguments> familyPlacements() {
        List<Arguments> out = new ArrayList<>();
        for (String fixture : DispatchedFidelityTest.FAMILIES) {
            out.add(Arguments.of(fixture, "all on gpu0"));
            out.add(Arguments.of(fixture, "gpu0/cpu/disk"));
        }
        return out.stream();
    }

    /** The families over the shared blocks: resident on gpu0, and with layers in CPU memory and on disk, preloaded. */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("familyPlacements")
    void familiesGiveGoldenTokensAndLogitsOnCuda(String fixture, String placement) {
        requireGpus(1);
        DeviceMap map = placement.equals("all on gpu0") ? DeviceMap.single(GPU0) : mixedMap(fixture);
        double diff = assertGolden(fixture, map, Set.of(DispatchedFidelityTest.blockClass(fixture)));
        System.out.printf("cuda %s %s: max |logit - golden| = %.3g%n", fixture, placement, diff);
    }

    /** Embeddings in CPU memory stream the rows their ids name to gpu0 (Gemma 2's are scaled after the lookup). */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"tiny-llama", "tiny-gemma2"})
    void embeddingsInCpuMemoryStreamTheirRowsAndGiveGoldenTokensOnCuda(String fixture) {
        requireGpus(1);
        Map<String, Device> m = new LinkedHashMap<>(mixedMap(fixture).entries());
        m.put("model.embed_tokens", CPU);
        double diff = assertGolden(fixture, DeviceMap.of(m), Set.of(DispatchedFidelityTest.blockClass(fixture)));
        System.out.printf("cuda %s, embeddings in CPU memory streaming rows: max |logit - golden| = %.3g%n", fixture, diff);
    }

    @Test
    void cpuOffloadedBlocksLiveInPageLockedMemoryUntilTheModelIsRemoved() {
        requireGpus(1);
        Path dir = Fixtures.model("tiny-llama");
        long before = backend.pageLocking(GPU0).lockedBytes();
        Loaded l = load(dir, ModelFamilies.build(dir, backend), mixedMap("tiny-llama"), Set.of(), 1);
        long host = l.result().hostOffloadBytes();
        assertThat(host).isPositive();
        assertThat(backend.pageLocking(GPU0).lockedBytes() - before).isGreaterThanOrEqualTo(host);
        l.close();
        assertThat(backend.pageLocking(GPU0).lockedBytes())
                .isLessThanOrEqualTo(before + backend.staging().idleBytes());
    }

    @Test
    void tiedEmbeddingAndHeadOnTwoGpusEachUseTheirOwnCopy() {
        requireGpus(2);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("transformer.wte", GPU0);
        m.put("transformer.wpe", GPU0);
        m.put("transformer.drop", GPU0);
        m.put("transformer.h.0", GPU0);
        m.put("transformer.h.1", GPU0);
        m.put("transformer.h.2", GPU1);
        m.put("transformer.h.3", GPU1);
        m.put("transformer.ln_f", GPU1);
        m.put("lm_head", GPU1);
        // the home tensor stays with the embedding on gpu0; lm_head on gpu1 ran on its own copy
        assertGolden("tiny-gpt2", DeviceMap.of(m), Set.of("GPT2Block"), model ->
                assertThat(model.find("transformer.wte").tensor("weight").device()).isEqualTo(GPU0));
    }

    @Test
    void llamaSplitOverTwoGpusGivesTheGoldenTokens() {
        requireGpus(2);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", GPU0);
        m.put("model.layers.0", GPU0);
        m.put("model.layers.1", GPU0);
        m.put("model.layers.2", GPU1);
        m.put("model.layers.3", CPU);
        m.put("model.norm", GPU1);
        m.put("model.rotary_emb", GPU1);
        m.put("lm_head", GPU1);
        assertGolden("tiny-llama", DeviceMap.of(m), Set.of("LlamaDecoderLayer"));
    }

    /** The fixture's tensors stored as {@code dtype} in a new folder (its config.json copied). */
    Path checkpointAs(String fixture, DType dtype) throws Exception {
        Path src = Fixtures.model(fixture);
        Path out = tmp.resolve(fixture + "-" + dtype.name().toLowerCase());
        Files.createDirectories(out);
        Files.copy(src.resolve("config.json"), out.resolve("config.json"));
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(src)) {
            SafetensorsWriter w = new SafetensorsWriter();
            for (String k : ckpt.keys()) {
                var spec = ckpt.spec(k);
                if (spec.dtype() == DType.FLOAT32) {
                    w.add(k, spec.withDType(dtype), DTypeConversion.convert(ckpt.bytes(k), DType.FLOAT32, dtype));
                } else {
                    w.addFrom(ckpt, k);
                }
            }
            w.write(out.resolve("model.safetensors"));
        }
        return out;
    }

    static float[][] logitsOf(Path dir, DType modelDtype, Device device, DeviceMap map) {
        CausalLM model = ModelFamilies.build(ModelConfig.read(dir), backend, modelDtype);
        try (Loaded l = load(dir, model, map, Set.of(), 1)) {
            return new Generator(l.model(), backend, device).logits(Golden.of("tiny-llama").inputIds());
        }
    }

    @Test
    void bf16AndFp16CheckpointsGiveOnTheGpuWhatTheyGiveOnTheCpu() throws Exception {
        requireGpus(1);
        for (DType stored : List.of(DType.BFLOAT16, DType.FLOAT16)) {
            Path dir = checkpointAs("tiny-llama", stored);
            float[][] cpu = logitsOf(dir, DType.FLOAT32, CPU, DeviceMap.single(CPU));
            float[][] gpu = logitsOf(dir, DType.FLOAT32, GPU0, mixedMap("tiny-llama"));
            double diff = 0;
            for (int r = 0; r < cpu.length; r++) {
                for (int c = 0; c < cpu[r].length; c++) {
                    diff = Math.max(diff, Math.abs(cpu[r][c] - gpu[r][c]));
                }
            }
            System.out.printf("cuda %s checkpoint into float32, gpu vs cpu: max |diff| = %.3g%n", stored, diff);
            assertThat(diff).as(stored.name()).isLessThan(TOLERANCE);
        }
    }

    @Test
    void fp16ModelOnTheGpuStaysCloseToTheFloat32Golden() throws Exception {
        requireGpus(1);
        Golden golden = Golden.of("tiny-llama");
        Path dir = checkpointAs("tiny-llama", DType.FLOAT16);
        double diff = golden.maxAbsDiff(logitsOf(dir, DType.FLOAT16, GPU0, mixedMap("tiny-llama")));
        System.out.printf("cuda fp16 model, gpu0/cpu/disk: max |logit - float32 golden| = %.3g%n", diff);
        // half precision (11-bit significands) through 4 layers: 0.032 measured on the H200 on 2026-11-30
        assertThat(diff).isLessThan(5e-2);
    }

    static long usedGpuBytes() {
        JniUtils.emptyCudaCache();
        var u = CudaUtils.getGpuMemory(ai.djl.Device.gpu(0));
        return u.getCommitted();
    }

    @Test
    void gpuMemoryReturnsToItsStartingLevelAfter100ForwardsAndAfterClose() {
        requireGpus(1);
        Golden golden = Golden.of("tiny-llama");
        Path dir = Fixtures.model("tiny-llama");
        // warm up once: the CUDA context, cuBLAS workspaces and kernels stay for the process's life
        try (Loaded l = load(dir, ModelFamilies.build(dir, backend), mixedMap("tiny-llama"), Set.of(), 1)) {
            new Generator(l.model(), backend, GPU0).generate(golden.inputIds(), GenerationConfig.greedy(2));
        }
        long start = usedGpuBytes();
        int arrays = backend.liveArrayCount();
        long after100;
        try (Loaded l = load(dir, ModelFamilies.build(dir, backend), mixedMap("tiny-llama"), Set.of(), 1)) {
            Generator gen = new Generator(l.model(), backend, GPU0);
            gen.logits(golden.inputIds());
            long warm = usedGpuBytes();
            for (int i = 0; i < 100; i++) {
                gen.logits(golden.inputIds());
            }
            after100 = usedGpuBytes();
            System.out.printf("cuda memory: start %d, warm %d, after 100 forwards %d bytes used%n", start, warm,
                    after100);
            assertThat(after100).isLessThanOrEqualTo(warm);
        }
        long end = usedGpuBytes();
        System.out.printf("cuda memory: after close %d bytes used (start %d)%n", end, start);
        assertThat(end).isLessThanOrEqualTo(start);
        assertThat(backend.liveArrayCount()).isEqualTo(arrays);
    }
}

package dev.ferry.pytorch.quant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.load.LoadRequest;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.core.weights.WeightsStore;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * int8 blocks stored away from their execution device hold and stream int8 bytes, and compute exactly what resident
 * int8 blocks compute: the dequantization is the same ops on the same values wherever the bytes came from.
 */
class Int8OffloadTest {

    static final String FIXTURE = "tiny-llama";
    static final Set<String> PRELOAD = Set.of("LlamaDecoderLayer");
    static DjlBackend backend;
    static long[] prompt;
    static float[][] resident;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() throws Exception {
        backend = new DjlBackend();
        prompt = Int8FidelityTest.prompt(FIXTURE);
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            ModelFamilies.load(lm, ckpt, backend, Device.cpu()); // undispatched: no hook at all
            resident = new Generator(lm, backend, Device.cpu()).logits(prompt);
        }
        lm.namedTensors().values().forEach(TensorSlot::release);
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static CausalLM build() {
        return ModelFamilies.build(ModelConfig.read(Fixtures.model(FIXTURE)), backend, DType.FLOAT32,
                QuantizationScheme.INT8);
    }

    /** Layers 1 and 3 and the head on disk, the rest resident on the CPU. */
    static DeviceMap diskMap() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", Device.cpu());
        m.put("model.layers.0", Device.cpu());
        m.put("model.layers.1", Device.disk());
        m.put("model.layers.2", Device.cpu());
        m.put("model.layers.3", Device.disk());
        m.put("model.norm", Device.cpu());
        m.put("model.rotary_emb", Device.cpu());
        m.put("lm_head", Device.disk());
        return DeviceMap.of(m);
    }

    enum Source { FLOAT_CHECKPOINT_IN_PLACE, FLOAT_CHECKPOINT_OFFLOAD_FOLDER, INT8_CHECKPOINT_IN_PLACE }

    @ParameterizedTest
    @EnumSource(Source.class)
    void diskOffloadedInt8BlocksGiveTheResidentLogitsAndStreamInt8Bytes(Source source) {
        Path dir = Fixtures.model(FIXTURE);
        if (source == Source.INT8_CHECKPOINT_IN_PLACE) {
            dir = tmp.resolve("int8");
            QuantizedCheckpointTest.quantize(FIXTURE, dir, backend);
        }
        CausalLM lm = source == Source.INT8_CHECKPOINT_IN_PLACE
                ? ModelFamilies.build(ModelConfig.read(dir), backend) : build();
        StreamCounter counter = new StreamCounter();
        DeviceMap map = diskMap();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            CheckpointDispatcher.Options options = CheckpointDispatcher.Options.of(map).withDispatch(
                    DispatchOptions.of(map).withPreloadClasses(PRELOAD).withStreamCounter(counter));
            if (source == Source.FLOAT_CHECKPOINT_OFFLOAD_FOLDER) {
                options = options.withOffloadDir(tmp.resolve("offload"));
            }
            try (CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(lm, ckpt, options)) {
                long offloaded = bytesUnder(lm, "model.layers.1", "model.layers.3", "lm_head");
                assertThat(result.diskOffloadBytes()).isEqualTo(offloaded);
                if (result.offloadFolder() != null) {
                    assertThat(result.offloadFolder().spec("model.layers.1.mlp.up_proj.weight").dtype())
                            .isEqualTo(DType.INT8);
                }
                float[][] logits = new Generator(lm, backend, Device.cpu()).logits(prompt);
                assertThat(logits).isDeepEqualTo(resident);
                assertThat(counter.snapshot().streamedBytes()).isEqualTo(offloaded);
                assertThat(lm.find("model.layers.1.mlp.up_proj").tensor("weight").isMaterialised()).isFalse();
                Dispatcher.remove(lm);
            }
        }
    }

    @Test
    void blocksCopiedToHostMemoryHoldInt8AndGiveTheResidentLogits() {
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            ModelFamilies.load(lm, ckpt, backend, Device.cpu());
            // no offload store: the dispatcher copies the loaded (int8) tensors of offloaded blocks to host memory
            new Dispatcher(backend).dispatch(lm, DispatchOptions.of(diskMap()).withPreloadClasses(PRELOAD));
            assertThat(new Generator(lm, backend, Device.cpu()).logits(prompt)).isDeepEqualTo(resident);
            Dispatcher.remove(lm);
        }
        lm.namedTensors().values().forEach(TensorSlot::release);
    }

    /** int8 blocks stream a quarter of float32's weight bytes here (half of float16's): the planner counts that. */
    @Test
    void planningCountsInt8Sizes() {
        CausalLM fp = ModelFamilies.build(ModelConfig.read(Fixtures.model(FIXTURE)), backend, DType.FLOAT32);
        CausalLM q = build();
        long layerFp = fp.find("model.layers.0").byteSize();
        long layerQ = q.find("model.layers.0").byteSize();
        assertThat(layerQ).isLessThan(layerFp / 3); // int8 weights, float norms and scales
        // a CPU budget that holds the int8 model with room to spare but not the float32 one
        long budget = q.byteSize() + layerQ;
        assertThat(budget).isLessThan(fp.byteSize());
        LoadRequest request = Ferry.model(Fixtures.model(FIXTURE)).deviceMap("auto").maxMemory("cpu=" + budget)
                .request();
        assertThat(request.deviceMapFor(q, backend, true).entries().values()).doesNotContain(Device.disk());
        assertThat(request.deviceMapFor(fp, backend, true).entries().values()).contains(Device.disk());
    }

    @Test
    void theBuildersQuantizeOptionLoadsInt8DispatchedToTheResidentLogits() {
        try (DispatchedModel model = Ferry.model(Fixtures.model(FIXTURE)).deviceMap(diskMap()).preload(
                "LlamaDecoderLayer").quantize("int8").load()) {
            assertThat(model.logits(prompt)).isDeepEqualTo(resident);
            assertThat(model.generate(prompt, GenerationConfig.greedy(8).withEos(List.of()))).hasSize(8);
        }
    }

    @Test
    void repeatedForwardsOfOffloadedInt8BlocksLeakNoNativeArray() {
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            DeviceMap map = diskMap();
            try (CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(lm, ckpt, CheckpointDispatcher.Options.of(map).withDispatch(
                            DispatchOptions.of(map).withPreloadClasses(PRELOAD).withPrefetchBlocks(0)))) {
                Generator gen = new Generator(lm, backend, Device.cpu());
                gen.logits(prompt);
                int warm = backend.liveArrayCount();
                for (int i = 0; i < 50; i++) {
                    gen.logits(prompt);
                }
                gen.generate(prompt, GenerationConfig.greedy(8));
                assertThat(backend.liveArrayCount()).isEqualTo(warm);
                Dispatcher.remove(lm);
            }
        }
        lm.namedTensors().values().forEach(TensorSlot::release);
    }

    static long bytesUnder(Module root, String... names) {
        long n = 0;
        for (String name : names) {
            n += root.find(name).byteSize();
        }
        return n;
    }
}

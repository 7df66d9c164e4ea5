package dev.ferry.pytorch.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.quant.QuantizationScheme;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.DecodeSteps;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * int8 on CUDA: tiny-llama with layer 2 in page-locked CPU memory and layer 3 on disk, the rest on gpu0. The int8
 * bytes are what crosses the link (counted per decode step) and the GPU dequantizes; logits equal the all-resident
 * int8 model on gpu0 and the int8 model on the CPU. Skipped where libtorch sees no GPU; the GPU harness runs it.
 */
@Tag("gpu")
class Int8CudaTest {

    static final Device GPU0 = Device.accelerator(0);
    static final String FIXTURE = "tiny-llama";
    /** GPU against CPU float32 (cuBLAS sums in another order), as CudaGoldenTest allows. */
    static final double TOLERANCE = 1e-4;

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    static CausalLM build() {
        return ModelFamilies.build(ModelConfig.read(Fixtures.model(FIXTURE)), backend, DType.FLOAT32,
                QuantizationScheme.INT8);
    }

    static float[][] undispatched(Device device, long[] prompt) {
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            ModelFamilies.load(lm, ckpt, backend, device);
            return new Generator(lm, backend, device).logits(prompt);
        } finally {
            lm.namedTensors().values().forEach(TensorSlot::release);
        }
    }


    @Test
    void offloadedInt8LayersStreamInt8AndGiveTheResidentLogitsOnCuda() throws Exception {
        assumeTrue(backend.gpuCount() >= 1, "needs a CUDA GPU; libtorch sees " + backend.gpuCount());
        long[] prompt = Int8FidelityTest.prompt(FIXTURE);
        float[][] onCpu = undispatched(Device.cpu(), prompt);
        float[][] onGpu = undispatched(GPU0, prompt);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("", GPU0);
        m.put("model.layers.2", Device.cpu());
        m.put("model.layers.3", Device.disk());
        DeviceMap map = DeviceMap.of(m);
        StreamCounter counter = new StreamCounter();
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE));
             CheckpointDispatcher.Result r = new CheckpointDispatcher(backend, new Dispatcher(backend))
                     .loadAndDispatch(lm, ckpt, CheckpointDispatcher.Options.of(map).withDispatch(DispatchOptions
                             .of(map).withPreloadClasses(Set.of("LlamaDecoderLayer")).withStreamCounter(counter)))) {
            long layer2 = lm.find("model.layers.2").byteSize();
            long layer3 = lm.find("model.layers.3").byteSize();
            assertThat(r.hostOffloadBytes()).isEqualTo(layer2);
            Generator gen = new Generator(lm, backend, GPU0);
            float[][] dispatched = gen.logits(prompt);
            System.out.printf("cuda int8 %s: offloaded vs resident gpu0 %.3g, vs cpu %.3g%n", FIXTURE,
                    DecodeSteps.maxDiff(dispatched, onGpu), DecodeSteps.maxDiff(dispatched, onCpu));
            assertThat(DecodeSteps.maxDiff(dispatched, onGpu)).isLessThan(1e-5);
            assertThat(DecodeSteps.maxDiff(dispatched, onCpu)).isLessThan(TOLERANCE);
            int[] seen = {0};
            long[] perStep = new long[1];
            gen.generate(prompt, GenerationConfig.greedy(3).withEos(List.of()), t -> {
                if (++seen[0] == 1) {
                    counter.reset();
                } else if (seen[0] == 2) {
                    perStep[0] = counter.snapshot().streamedBytes();
                }
            });
            assertThat(perStep[0]).isEqualTo(layer2 + layer3); // int8 weights, float norms and scales
            Dispatcher.remove(lm);
        }
    }

    @Test
    void int8LayersFusedGiveWhatTheJavaInt8LayersGiveOnCuda() throws Exception {
        assumeTrue(backend.gpuCount() >= 1, "needs a CUDA GPU; libtorch sees " + backend.gpuCount());
        if (!Boolean.getBoolean("ferry.requireTorchNative")) {
            assumeTrue(dev.ferry.pytorch.TorchNative.loaded(), "Ferry's native library is not on this machine");
        }
        long[] prompt = Int8FidelityTest.prompt(FIXTURE);
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            ModelFamilies.load(lm, ckpt, backend, GPU0); // no hooks: every layer may take the fused step
            Generator gen = new Generator(lm, backend, GPU0);
            float[][] java = DecodeSteps.greedyLogits(gen, prompt, 12);
            long before = dev.ferry.pytorch.TorchNative.fusedSteps();
            float[][] fused = DecodeSteps.withProperty("ferry.fusedInt8", "on",
                    () -> DecodeSteps.greedyLogits(gen, prompt, 12));
            long steps = dev.ferry.pytorch.TorchNative.fusedSteps() - before;
            System.out.printf("cuda int8 %s fused: %d fused layer steps, max |fused - java| = %.3g%n", FIXTURE, steps,
                    DecodeSteps.maxDiff(fused, java));
            assertThat(steps).as("fused layer steps").isGreaterThanOrEqualTo(12);
            assertThat(DecodeSteps.maxDiff(fused, java)).isLessThan(TOLERANCE);
        } finally {
            lm.namedTensors().values().forEach(TensorSlot::release);
        }
    }
}

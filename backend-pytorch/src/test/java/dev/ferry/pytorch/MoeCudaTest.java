package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.hook.StreamCounter;
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
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The MoE fixtures on CUDA with their dense weights on gpu0 and their experts in page-locked CPU memory (layers 0-1)
 * and on disk (layer 2): golden logits and tokens, and a decode step that streams only its token's routed experts.
 * Skipped where libtorch sees no GPU; the GPU harness runs it.
 */
@Tag("gpu")
class MoeCudaTest {

    static final Device GPU0 = Device.accelerator(0);

    static DjlBackend backend;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
    }

    @AfterAll
    static void stop() {
        backend.close();
    }

    @ParameterizedTest
    @ValueSource(strings = {"tiny-mixtral", "tiny-qwen3-moe"})
    void expertsInPageLockedCpuMemoryAndOnDiskGiveTheGoldensOnCuda(String fixture) {
        assumeTrue(backend.gpuCount() >= 1, "needs a CUDA GPU; libtorch sees " + backend.gpuCount());
        Golden golden = Golden.of(fixture);
        Path dir = Fixtures.model(fixture);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("", GPU0);
        m.put("model.layers.0.mlp.experts", Device.cpu());
        m.put("model.layers.1.mlp.experts", Device.cpu());
        m.put("model.layers.2.mlp.experts", Device.disk());
        DeviceMap map = DeviceMap.of(m);
        String layer = fixture.equals("tiny-mixtral") ? "MixtralDecoderLayer" : "Qwen3MoeDecoderLayer";
        StreamCounter counter = new StreamCounter();
        long lockedBefore = backend.pageLocking(GPU0).lockedBytes();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(dir)) {
            CausalLM model = ModelFamilies.build(dir, backend);
            CheckpointDispatcher.Result r = new CheckpointDispatcher(backend, new Dispatcher(backend)).loadAndDispatch(
                    model, ckpt, CheckpointDispatcher.Options.of(map).withDispatch(DispatchOptions.of(map)
                            .withPreloadClasses(Set.of(layer)).withStreamCounter(counter)));
            assertThat(backend.pageLocking(GPU0).lockedBytes() - lockedBefore)
                    .isGreaterThanOrEqualTo(r.hostOffloadBytes());
            Generator gen = new Generator(model, backend, GPU0);
            double diff = golden.maxAbsDiff(gen.logits(golden.inputIds()));
            System.out.printf("cuda %s, experts in CPU memory and on disk: max |logit - golden| = %.3g%n", fixture, diff);
            assertThat(diff).isLessThan(CudaGoldenTest.TOLERANCE);
            StreamCounter.Snapshot[] step = new StreamCounter.Snapshot[1];
            int[] seen = {0};
            long[] tokens = gen.generate(golden.inputIds(), GenerationConfig.greedy(8), t -> {
                if (++seen[0] == 1) {
                    counter.reset();
                } else if (seen[0] == 2) {
                    step[0] = counter.snapshot();
                }
            });
            assertThat(tokens).containsExactly(golden.greedy());
            int k = model.config().integer("num_experts_per_tok");
            assertThat(step[0].expertFetches()).isEqualTo(3L * k); // 3 layers with experts away, top-k, one token
            assertThat(step[0].streamedBytes()).isEqualTo(step[0].routedExpertBytes());
            Dispatcher.remove(model);
            r.close();
        }
    }
}

package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.dispatch.CheckpointDispatcher;
import dev.ferry.core.dispatch.DispatchOptions;
import dev.ferry.core.dispatch.DispatchPlan;
import dev.ferry.core.dispatch.Dispatcher;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.module.Module;
import dev.ferry.core.module.TensorSlot;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.core.placement.DevicePlanner;
import dev.ferry.core.placement.PlanRequest;
import dev.ferry.core.tensor.DType;
import dev.ferry.core.tensor.Device;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.weights.SafetensorsCheckpoint;
import dev.ferry.pytorch.generate.Generator;
import dev.ferry.pytorch.models.CausalLM;
import dev.ferry.pytorch.models.ModelConfig;
import dev.ferry.pytorch.models.ModelFamilies;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An offloaded embedding streams the rows its ids name, not its table, and computes exactly what the resident table
 * computes: the forward is the same lookup over the same rows, renumbered.
 */
class RowLookupOffloadTest {

    static final String FIXTURE = "tiny-llama";
    static final Set<String> PRELOAD = Set.of("LlamaDecoderLayer");
    static final String TABLE = "model.embed_tokens.weight";
    static DjlBackend backend;
    static long[] prompt;
    static float[][] resident;

    @TempDir
    Path tmp;

    @BeforeAll
    static void start() {
        backend = new DjlBackend();
        prompt = Golden.of(FIXTURE).inputIds();
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
        return ModelFamilies.build(ModelConfig.read(Fixtures.model(FIXTURE)), backend, DType.FLOAT32);
    }

    /** The embedding on disk, everything else resident on the CPU. */
    static DeviceMap embeddingOnDisk() {
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("model.embed_tokens", Device.disk());
        for (int i = 0; i < 4; i++) {
            m.put("model.layers." + i, Device.cpu());
        }
        m.put("model.norm", Device.cpu());
        m.put("model.rotary_emb", Device.cpu());
        m.put("lm_head", Device.cpu());
        return DeviceMap.of(m);
    }

    static long rowBytes(Module lm) {
        TensorSlot table = lm.find("model.embed_tokens").tensor("weight");
        return table.byteSize() / table.spec().dim(0);
    }

    enum Source { CHECKPOINT_IN_PLACE, OFFLOAD_FOLDER, HOST_MEMORY }

    @ParameterizedTest
    @EnumSource(Source.class)
    void anOffloadedEmbeddingStreamsOnlyTheRowsItsIdsNameAndGivesTheResidentLogits(Source source) {
        CausalLM lm = build();
        StreamCounter counter = new StreamCounter();
        DeviceMap map = embeddingOnDisk();
        DispatchOptions dispatch = DispatchOptions.of(map).withPreloadClasses(PRELOAD).withStreamCounter(counter);
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            if (source == Source.HOST_MEMORY) {
                ModelFamilies.load(lm, ckpt, backend, Device.cpu());
                new Dispatcher(backend).dispatch(lm, dispatch); // copies the table to host memory, streams its rows
                checkForward(lm, counter);
                Dispatcher.remove(lm);
                lm.namedTensors().values().forEach(TensorSlot::release);
                return;
            }
            CheckpointDispatcher.Options options = CheckpointDispatcher.Options.of(map).withDispatch(dispatch);
            if (source == Source.OFFLOAD_FOLDER) {
                options = options.withOffloadDir(tmp.resolve("offload"));
            }
            try (CheckpointDispatcher.Result result = new CheckpointDispatcher(backend, new Dispatcher(backend))
                    .loadAndDispatch(lm, ckpt, options)) {
                assertThat(result.report().memory().lookupTableBytes())
                        .isEqualTo(lm.find("model.embed_tokens").tensor("weight").byteSize());
                assertThat(result.report().memory().blockBytesPerForward()).isZero();
                checkForward(lm, counter);
                Dispatcher.remove(lm);
            }
        }
    }

    private static void checkForward(CausalLM lm, StreamCounter counter) {
        float[][] logits = new Generator(lm, backend, Device.cpu()).logits(prompt);
        assertThat(logits).isDeepEqualTo(resident);
        long distinct = Arrays.stream(prompt).distinct().count();
        assertThat(distinct).isLessThan(lm.find("model.embed_tokens").tensor("weight").spec().dim(0));
        assertThat(counter.snapshot().streamedBytes()).isEqualTo(distinct * rowBytes(lm));
        assertThat(lm.find("model.embed_tokens").tensor("weight").isMaterialised()).isFalse();
    }

    @Test
    void theDispatchPlanMarksAnUntiedOffloadedEmbeddingAsALookupAndAResidentOneNot() {
        CausalLM lm = build();
        DispatchPlan offloaded = Dispatcher.plan(lm, embeddingOnDisk(), new PreloadRule(PRELOAD));
        assertThat(offloaded.unit("model.embed_tokens").rowLookup()).isTrue();
        assertThat(offloaded.unit("model.layers.0").rowLookup()).isFalse();

        Map<String, Device> all = new LinkedHashMap<>(embeddingOnDisk().entries());
        all.put("model.embed_tokens", Device.cpu());
        DispatchPlan resident = Dispatcher.plan(lm, DeviceMap.of(all), new PreloadRule(PRELOAD));
        assertThat(resident.unit("model.embed_tokens").rowLookup()).isFalse();
    }

    @Test
    void theReportCountsTheTableApartFromTheBlocksStreamedWhole() {
        CausalLM lm = build();
        DispatchPlan plan = Dispatcher.plan(lm, embeddingOnDisk(), new PreloadRule(PRELOAD));
        long table = lm.find("model.embed_tokens").tensor("weight").byteSize();
        assertThat(plan.report().memory().lookupTableBytes()).isEqualTo(table);
        assertThat(plan.report().memory().blockBytesPerForward()).isZero();
        assertThat(plan.report().toTable()).contains("offloaded lookup tables (embeddings)")
                .contains("streamed by the rows their ids name");
        assertThat(plan.report().toJson()).contains("\"offloaded_lookup_table_bytes\" : " + table);
        assertThat(plan.report().entry("model.embed_tokens").reasonText())
                .endsWith("(streams the rows its ids name, not the table)");
        assertThat(plan.report().entry("model.layers.0").reasonText()).doesNotContain("rows");
    }

    @Test
    void autoUnderAGpuBudgetTheModelOverflowsPutsTheEmbeddingAfterTheLayers() {
        CausalLM lm = build();
        long layer = lm.find("model.layers.0").byteSize();
        long head = lm.find("lm_head").byteSize();
        Map<Device, Long> budgets = new LinkedHashMap<>();
        budgets.put(Device.accelerator(0), Math.max(layer, head) + 2 * layer + 100); // the reserve and two layers
        budgets.put(Device.cpu(), 1L << 30);
        DeviceMap map = new DevicePlanner().plan(lm, PlanRequest.of(budgets).withNoSplit("LlamaDecoderLayer"))
                .deviceMap();
        assertThat(map.deviceOf(TABLE)).isEqualTo(Device.cpu());
        assertThat(map.deviceOf("model.layers.0.mlp.up_proj.weight")).isEqualTo(Device.accelerator(0));
        assertThat(map.deviceOf("model.layers.1.mlp.up_proj.weight")).isEqualTo(Device.accelerator(0));
        assertThat(map.deviceOf("model.layers.2.mlp.up_proj.weight")).isEqualTo(Device.cpu());
    }

    @Test
    void anEmbeddingTiedToTheHeadIsStreamedWholeBecauseTheHeadReadsAllOfIt() {
        CausalLM gpt2 = ModelFamilies.build(ModelConfig.read(Fixtures.model("tiny-gpt2")), backend, DType.FLOAT32);
        Map<String, Device> m = new LinkedHashMap<>();
        m.put("transformer.wte", Device.disk());
        m.put("transformer.wpe", Device.disk());
        m.put("transformer.h", Device.cpu());
        m.put("transformer.ln_f", Device.cpu());
        m.put("lm_head", Device.cpu());
        DispatchPlan plan = Dispatcher.plan(gpt2, DeviceMap.of(m), new PreloadRule(Set.of("GPT2Block")));
        assertThat(plan.unit("transformer.wte").rowLookup()).isFalse();
        assertThat(plan.unit("transformer.wpe").rowLookup()).isTrue(); // positions: untied, looked up by row
    }

    @Test
    void anIdOutsideTheTableIsRefusedNamingTheTableAndItsPositionAndTheModelRunsOn() {
        CausalLM lm = build();
        try (SafetensorsCheckpoint ckpt = SafetensorsCheckpoint.open(Fixtures.model(FIXTURE))) {
            ModelFamilies.load(lm, ckpt, backend, Device.cpu());
            new Dispatcher(backend).dispatch(lm, DispatchOptions.of(embeddingOnDisk()).withPreloadClasses(PRELOAD));
            long rows = lm.find("model.embed_tokens").tensor("weight").spec().dim(0);
            Module embed = lm.find("model.embed_tokens");
            try (DjlTensor ids = backend.tokens(new long[] {3, 1, rows}, Device.cpu())) {
                assertThatThrownBy(() -> embed.call(ids))
                        .isInstanceOf(IllegalArgumentException.class)
                        .hasMessageContaining("id " + rows + " at position 2")
                        .hasMessageContaining(TABLE)
                        .hasMessageContaining(rows + " rows");
            }
            assertThat(embed.tensor("weight").isMaterialised()).isFalse();
            assertThat(new Generator(lm, backend, Device.cpu()).logits(prompt)).isDeepEqualTo(resident);
            Dispatcher.remove(lm);
        }
        lm.namedTensors().values().forEach(TensorSlot::release);
    }
}

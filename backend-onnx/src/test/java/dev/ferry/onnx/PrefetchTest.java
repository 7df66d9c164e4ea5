package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import ai.onnxruntime.OnnxTensor;
import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.PreloadRule;
import dev.ferry.core.placement.DeviceMap;
import dev.ferry.onnx.OnnxDispatchReport.OrtObjects;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Offloaded partitions prepared ahead on a background thread: same numbers as without, the sessions used are
 * the ones prepared, at most the configured number wait, and every session, weight tensor and result made is
 * closed by its owner.
 */
class PrefetchTest {

    static final OnnxModuleTree LLAMA = OnnxModuleTree.build(OnnxModel.load(TestModels.fixture("tiny-llama",
            "model.onnx")));
    static final JsonNode GOLDEN = TestModels.json(TestModels.fixture("tiny-llama", "golden.json"));

    /** tiny-llama without preload classes: layers 1, 2 and the norm offloaded as 19 partitions. */
    static OnnxDispatchedModel dispatch(int prefetch) {
        return OnnxDispatchedModel.dispatch(LLAMA, DeviceMap.of(CausalLmFidelityTest.llamaMap()), PreloadRule.none(),
                CausalLmFidelityTest.OPTIONS.withPrefetchPartitions(prefetch));
    }

    static long offloadedPartitions(OnnxDispatchedModel d) {
        return d.partitions().stream().filter(Partition::offloaded).count();
    }

    static List<float[]> logitsOfRuns(OnnxDispatchedModel d, int runs) {
        List<float[]> out = new ArrayList<>();
        try (OnnxTensor in = Ort.ids(CausalLmFidelityTest.longs(GOLDEN.get("input_ids")))) {
            for (int i = 0; i < runs; i++) {
                try (OnnxRunResult r = d.run(Map.of("input_ids", in))) {
                    out.add(r.floats("logits"));
                }
            }
        }
        return out;
    }

    @ParameterizedTest(name = "prefetch={0}")
    @ValueSource(ints = {1, 2})
    void logitsAreTheSameWithPrefetchOnAndOff(int prefetch) {
        List<float[]> off;
        try (OnnxDispatchedModel d = dispatch(0)) {
            off = logitsOfRuns(d, 3);
        }
        List<float[]> on;
        try (OnnxDispatchedModel d = dispatch(prefetch)) {
            on = logitsOfRuns(d, 3);
        }
        for (int i = 0; i < 3; i++) {
            assertThat(on.get(i)).containsExactly(off.get(i));
        }
    }

    @Test
    void everyOffloadedPartitionButTheFirstRunsOnASessionPreparedAhead() {
        try (OnnxDispatchedModel d = dispatch(1)) {
            logitsOfRuns(d, 3);
            OnnxDispatchReport.Prefetch p = d.report().prefetch();
            assertThat(offloadedPartitions(d)).isEqualTo(19);
            assertThat(p.misses()).isEqualTo(1);
            assertThat(p.hits()).isEqualTo(3 * 19 - 1);
        }
    }

    @ParameterizedTest(name = "prefetch={0}")
    @ValueSource(ints = {0, 1, 2})
    void sessionsPreparedAheadAreBoundedByTheOption(int prefetch) {
        try (OnnxDispatchedModel d = dispatch(prefetch)) {
            logitsOfRuns(d, 2);
            OnnxDispatchReport r = d.report();
            assertThat(r.prefetch().partitionsAhead()).isEqualTo(prefetch);
            assertThat(r.prefetch().prepared()).isEqualTo(prefetch);
            assertThat(r.ortObjects().sessions().open()).isEqualTo(r.residentSessions() + prefetch);
        }
    }

    @ParameterizedTest(name = "prefetch={0}")
    @ValueSource(ints = {0, 1, 2})
    void noSessionTensorOrResultLeaksOverRepeatedRunsAndAllAreClosedWithTheModel(int prefetch) {
        OnnxDispatchedModel d = dispatch(prefetch);
        OrtObjects afterFirst;
        OrtObjects afterLast;
        try {
            logitsOfRuns(d, 1);
            afterFirst = d.report().ortObjects();
            for (int run = 2; run <= 10; run++) {
                logitsOfRuns(d, 1);
                OrtObjects now = d.report().ortObjects();
                assertThat(now.sessions().open()).as("sessions open after run %d", run)
                        .isEqualTo(afterFirst.sessions().open());
                assertThat(now.weightTensors().open()).as("weight tensors open after run %d", run)
                        .isEqualTo(afterFirst.weightTensors().open());
                assertThat(now.results().open()).as("results open after run %d", run).isZero();
            }
            afterLast = d.report().ortObjects();
        } finally {
            d.close();
        }
        OrtObjects closed = d.report().ortObjects();
        // each run makes (and closes) one session per offloaded partition and the weight tensors supplied to them
        assertThat(afterLast.sessions().made() - afterFirst.sessions().made()).isEqualTo(9 * 19);
        assertThat(afterLast.weightTensors().made() - afterFirst.weightTensors().made()).isEqualTo(9 * 14);
        assertThat(closed.noneOpen()).as("%s", closed).isTrue();
    }

    @Test
    void aResultTheCallerKeepsIsOpenUntilClosed() {
        try (OnnxDispatchedModel d = dispatch(1);
             OnnxTensor in = Ort.ids(CausalLmFidelityTest.longs(GOLDEN.get("input_ids")))) {
            OnnxRunResult kept = d.run(Map.of("input_ids", in));
            assertThat(d.report().ortObjects().results().open()).isEqualTo(1);
            kept.close();
            assertThat(d.report().ortObjects().results().open()).isZero();
        }
    }
}

package dev.ferry.examples;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.dispatch.DispatchReport;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.hook.StreamCounter;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** A mixture-of-experts model loaded as users load one: the builder, a 4.x-spelled map, the default preload. */
class MoeBuilderTest {

    @Test
    void mixtralWithExpertsOnDiskGivesItsGoldenThroughTheBuilderAndCountsWhatItStreamed() throws IOException {
        JsonNode golden = FerryBuilderTest.golden("tiny-mixtral");
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("", "cpu");
        map.put("model.layers.1.block_sparse_moe.experts", "disk");
        map.put("model.layers.2.block_sparse_moe.experts", "disk");
        try (DispatchedModel model = Ferry.model(Fixtures.model("tiny-mixtral")).deviceMap(map).backend("pytorch")
                .load()) {
            StreamCounter counter = model.streamCounter().orElseThrow();
            long[] ids = FerryBuilderTest.longs(golden.get("input_ids"));

            assertThat(model.generate(ids, GenerationConfig.greedy(8)))
                    .containsExactly(FerryBuilderTest.longs(golden.get("greedy_new_tokens")));
            assertThat(model.report().entry("model.layers.1").reasonText()).contains("dense weights");
            assertThat(model.report().entry("model.layers.2.mlp.experts.0").reason())
                    .isEqualTo(DispatchReport.Reason.ROUTED_EXPERT);
            // a prefill and 7 decode steps, 2 layers with experts away: at most 4 experts a forward, at least 2 a step
            StreamCounter.Snapshot s = counter.snapshot();
            assertThat(s.expertFetches()).isBetween(2L * 2 * 8, 4L * 2 * 8);
            assertThat(s.streamedBytes()).isEqualTo(s.routedExpertBytes());
        }
    }
}

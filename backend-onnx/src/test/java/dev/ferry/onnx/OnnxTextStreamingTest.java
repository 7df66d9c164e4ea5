package dev.ferry.onnx;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.StopReason;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The public streaming API on ONNX Runtime is core's, so it streams the golden greedy tokens as PyTorch does. */
class OnnxTextStreamingTest {

    @Test
    void streamsTheGoldenGreedyTokensWithTextDeltasThatConcatenateToTheText() {
        JsonNode golden = TestModels.json(TestModels.fixture("tiny-llama", "golden.json"));
        long[] ids = new com.fasterxml.jackson.databind.ObjectMapper().convertValue(golden.get("input_ids"),
                long[].class);
        long[] greedy = new com.fasterxml.jackson.databind.ObjectMapper().convertValue(
                golden.get("greedy_new_tokens"), long[].class);
        try (DispatchedModel m = Ferry.model(TestModels.fixtures().resolve("tiny-llama")).backend("onnx").load()) {
            List<Long> tokens = new ArrayList<>();
            StringBuilder streamed = new StringBuilder();
            Completion c = m.generate(ids, GenerationConfig.greedy(greedy.length), (t, d) -> {
                tokens.add(t);
                streamed.append(d);
            }, null);
            assertThat(c.tokens()).containsExactly(greedy);
            assertThat(tokens).hasSize(greedy.length);
            assertThat(streamed.toString()).isEqualTo(c.text())
                    .isEqualTo(m.text().requireTokenizer().decode(greedy, true));
            assertThat(c.stopReason()).isEqualTo(StopReason.MAX_NEW_TOKENS);
        }
    }
}

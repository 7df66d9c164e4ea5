package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.core.text.ModelText;
import dev.ferry.core.text.TextTokenizer;
import dev.ferry.tokenizers.DjlTextTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * tiny-qwen3's conversations as prompt ids equal transformers' {@code apply_chat_template(..., tokenize=True)}
 * ({@code chat_golden.json}): the template rendered by core, encoded by the tokenizer without special tokens added.
 */
class ChatPromptGoldenTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    static ModelText text;
    static JsonNode golden;

    @BeforeAll
    static void open() throws IOException {
        Path dir = Fixtures.model("tiny-qwen3");
        text = ModelText.of(dir, List.of(), DjlTextTokenizer::open);
        golden = JSON.readTree(dir.resolve("chat_golden.json").toFile());
    }

    @AfterAll
    static void close() {
        text.close();
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> list(JsonNode n) {
        return n == null ? null : JSON.convertValue(n, List.class);
    }

    @Test
    void everyConversationWithAGenerationPromptTokenizesToTransformersIds() {
        List<String> checked = new ArrayList<>();
        for (JsonNode c : golden.get("conversations")) {
            if (!c.has("ids") || !c.get("add_generation_prompt").asBoolean()) {
                continue;
            }
            long[] ids = text.chatPrompt(list(c.get("messages")), list(c.get("tools")), Map.of());
            assertThat(ids).as(c.get("name").asText()).containsExactly(JSON.convertValue(c.get("ids"), long[].class));
            checked.add(c.get("name").asText());
        }
        assertThat(checked).contains("system_and_user", "multi_turn", "non_ascii", "tools");
    }

    @Test
    void textsEncodeAsTransformersEncodesThem() {
        TextTokenizer tokenizer = text.requireTokenizer();
        golden.get("encodings").fields().forEachRemaining(e -> assertThat(tokenizer.encode(e.getKey(), false))
                .as(e.getKey()).containsExactly(JSON.convertValue(e.getValue(), long[].class)));
    }

    @Test
    void everyEndOfSequenceIdOfGenerationConfigCounts() {
        List<Long> expected = JSON.convertValue(golden.get("eos_token_ids"), JSON.getTypeFactory()
                .constructCollectionType(List.class, Long.class));
        assertThat(text.eosTokenIds()).containsAll(expected);
    }
}

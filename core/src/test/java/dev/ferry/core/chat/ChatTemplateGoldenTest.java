package dev.ferry.core.chat;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.testing.Fixtures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * tiny-qwen3's chat template (ChatML) rendered by Ferry equals the text transformers' {@code apply_chat_template}
 * rendered for each conversation of {@code chat_golden.json} (system prompt, default system prompt, multi-turn with
 * {@code | trim}, without generation prompt, non-ASCII, {@code tools} through {@code tojson}), and the conversation the
 * template refuses with {@code raise_exception} is refused with the template's message.
 */
class ChatTemplateGoldenTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    static Path dir() {
        return Fixtures.model("tiny-qwen3");
    }

    static Stream<JsonNode> conversations() throws IOException {
        JsonNode golden = JSON.readTree(dir().resolve("chat_golden.json").toFile());
        return Stream.of(golden.get("conversations")).flatMap(c -> {
            List<JsonNode> all = new java.util.ArrayList<>();
            c.forEach(all::add);
            return all.stream();
        });
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> list(JsonNode n) {
        return n == null ? null : JSON.convertValue(n, List.class);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("conversations")
    void rendersEachConversationAsTransformersDoes(JsonNode conversation) {
        ChatTemplate template = ChatTemplate.read(dir()).orElseThrow();
        if (conversation.has("error")) {
            assertThatThrownBy(() -> template.render(list(conversation.get("messages")),
                    conversation.get("add_generation_prompt").asBoolean(), list(conversation.get("tools")), Map.of()))
                    .isInstanceOf(ChatTemplateException.class)
                    .hasMessageContaining(conversation.get("error").asText());
            return;
        }
        String text = template.render(list(conversation.get("messages")),
                conversation.get("add_generation_prompt").asBoolean(), list(conversation.get("tools")), Map.of());
        assertThat(text).isEqualTo(conversation.get("text").asText());
    }

    @Test
    void readsTheTemplateFromChatTemplateJinjaAndSpecialTokensFromTokenizerConfig() throws IOException {
        ChatTemplate template = ChatTemplate.read(dir()).orElseThrow();
        assertThat(template.source()).isEqualTo(Files.readString(dir().resolve("chat_template.jinja")));
        JsonNode config = JSON.readTree(dir().resolve("tokenizer_config.json").toFile());
        assertThat(template.specialTokens()).containsEntry("eos_token", config.get("eos_token").asText())
                .containsEntry("pad_token", config.get("pad_token").asText());
    }

    @Test
    void readsTheTemplateFromTokenizerConfigWhenThereIsNoJinjaFile(@org.junit.jupiter.api.io.TempDir Path tmp)
            throws IOException {
        String source = Files.readString(dir().resolve("chat_template.jinja"));
        var config = JSON.createObjectNode().put("eos_token", "<|im_end|>").put("chat_template", source);
        Files.writeString(tmp.resolve("tokenizer_config.json"), JSON.writeValueAsString(config));
        JsonNode first = conversations().findFirst().orElseThrow();
        String text = ChatTemplate.read(tmp).orElseThrow().render(list(first.get("messages")), true, null, Map.of());
        assertThat(text).isEqualTo(first.get("text").asText());
    }

    @Test
    void aFolderWithoutTemplateHasNone(@org.junit.jupiter.api.io.TempDir Path tmp) {
        assertThat(ChatTemplate.read(tmp)).isEmpty();
        assertThat(ChatTemplate.read(Fixtures.model("tiny-llama"))).isEmpty();
    }
}

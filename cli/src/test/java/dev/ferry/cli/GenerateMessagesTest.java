package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assumptions.assumeThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code ferry generate --messages FILE.json}: the conversation through the model's chat template. */
class GenerateMessagesTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    private static JsonNode firstConversation() throws IOException {
        return JSON.readTree(Cli.fixtures().resolve("tiny-qwen3/chat_golden.json").toFile())
                .get("conversations").get(0);
    }

    /** tiny-llama (which the PyTorch backend runs today) with tiny-qwen3's ChatML template. */
    private static Path llamaWithTemplate(Path tmp) throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("llama-chat"));
        try (Stream<Path> files = Files.list(Cli.fixtures().resolve("tiny-llama"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Files.copy(Cli.fixtures().resolve("tiny-qwen3/chat_template.jinja"), dir.resolve("chat_template.jinja"));
        return dir;
    }

    @Test
    void promptIdsAreTheRenderedTemplateEncodedWithoutSpecialTokensAndGenerateAsThoseIds(@TempDir Path tmp)
            throws IOException {
        Path model = llamaWithTemplate(tmp);
        JsonNode conversation = firstConversation();
        Path messages = Files.writeString(tmp.resolve("messages.json"), conversation.get("messages").toString());
        Cli chat = Cli.run("generate", "--model", model.toString(), "--messages", messages.toString(),
                "--max-new-tokens", "6", "--format", "json");
        assertThat(chat.exitCode()).as(chat.err()).isZero();
        // tiny-llama's tokenizer is one token per UTF-8 byte, so the rendered text's bytes are the expected ids
        byte[] rendered = conversation.get("text").asText().getBytes(java.nio.charset.StandardCharsets.UTF_8);
        long[] expected = new long[rendered.length];
        for (int i = 0; i < rendered.length; i++) {
            expected[i] = rendered[i] & 0xff;
        }
        JsonNode j = chat.json();
        assertThat(Cli.longs(j.get("prompt_ids"))).containsExactly(expected);
        String ids = Arrays.stream(expected).mapToObj(Long::toString).collect(Collectors.joining(","));
        Cli plain = Cli.run("generate", "--model", model.toString(), "--input-ids", ids, "--max-new-tokens", "6",
                "--format", "json");
        assertThat(Cli.longs(j.get("new_tokens"))).containsExactly(Cli.longs(plain.json().get("new_tokens")));
        assertThat(j.get("text").isTextual()).isTrue();
    }

    @Test
    void qwen3MessagesGiveTransformersPromptIdsAndGreedyTokens(@TempDir Path tmp) throws IOException {
        assumeThat(ModelFamilies.supportedModelTypes()).as("qwen3 is built by the PyTorch backend").contains("qwen3");
        JsonNode conversation = firstConversation();
        Path messages = Files.writeString(tmp.resolve("messages.json"), conversation.get("messages").toString());
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-qwen3"), "--messages", messages.toString(),
                "--max-new-tokens", String.valueOf(conversation.get("greedy_new_tokens").size()), "--format", "json");
        assertThat(r.exitCode()).as(r.err()).isZero();
        assertThat(Cli.longs(r.json().get("prompt_ids"))).containsExactly(Cli.longs(conversation.get("ids")));
        assertThat(Cli.longs(r.json().get("new_tokens"))).containsExactly(Cli.longs(conversation.get("greedy_new_tokens")));
        assertThat(r.json().get("text").asText()).isEqualTo(conversation.get("greedy_text").asText());
    }

    @Test
    void aModelWithoutChatTemplateIsUsageNamingTheFolder(@TempDir Path tmp) throws IOException {
        Path messages = Files.writeString(tmp.resolve("m.json"), "[{\"role\": \"user\", \"content\": \"Hi\"}]");
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--messages", messages.toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--messages").contains("tiny-llama").contains("no chat template");
    }

    @Test
    void aFileThatIsNotAListOfMessagesIsUsageNamingTheFile(@TempDir Path tmp) throws IOException {
        Path messages = Files.writeString(tmp.resolve("m.json"), "[{\"content\": \"no role\"}]");
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--messages", messages.toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("m.json").contains("message 0");
    }

    @Test
    void aMessagesPathThatIsNoRegularFileIsRefusedByName(@TempDir Path tmp) {
        Cli r = Cli.run("generate", "--model", Cli.model("tiny-llama"), "--messages", tmp.toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("--messages " + tmp).contains("is a folder");
    }

    @Test
    void aConversationTheTemplateRefusesIsUsageWithTheTemplatesMessage(@TempDir Path tmp) throws IOException {
        Path model = llamaWithTemplate(tmp);
        Path messages = Files.writeString(tmp.resolve("m.json"), "[{\"role\": \"tool\", \"content\": \"42\"}]");
        Cli r = Cli.run("generate", "--model", model.toString(), "--messages", messages.toString());
        assertThat(r.exitCode()).isEqualTo(2);
        assertThat(r.err()).contains("Unknown role: tool");
    }
}

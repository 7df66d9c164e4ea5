package dev.ferry.pytorch;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assumptions.assumeThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.chat.ChatMessage;
import dev.ferry.core.chat.NoChatTemplateException;
import dev.ferry.core.generate.Cancellation;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.StopReason;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import dev.ferry.pytorch.models.ModelFamilies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The public streaming, stopping and chat API on the PyTorch backend, through {@link Ferry#model}: tiny-llama (a
 * byte-level tokenizer whose random output is mostly broken UTF-8, which exercises the held characters), and a copy of
 * it with a chat template and extra end-of-sequence ids.
 */
class TextStreamingTest {

    static DispatchedModel llama;
    static Golden golden;

    @BeforeAll
    static void load() {
        llama = Ferry.model(Fixtures.model("tiny-llama")).load();
        golden = Golden.of("tiny-llama");
    }

    @AfterAll
    static void close() {
        llama.close();
    }

    @Test
    void streamedTokensAreTheGoldenGreedyTokensAndTheDeltasConcatenateToTheDecodedText() {
        List<Long> tokens = new ArrayList<>();
        StringBuilder streamed = new StringBuilder();
        Completion c = llama.generate(golden.inputIds(), GenerationConfig.greedy(8), (t, d) -> {
            tokens.add(t);
            streamed.append(d);
        }, null);
        assertThat(c.tokens()).containsExactly(golden.greedy());
        assertThat(tokens).containsExactlyElementsOf(Arrays.stream(golden.greedy()).boxed().toList());
        assertThat(c.text()).isEqualTo(llama.text().requireTokenizer().decode(golden.greedy(), true));
        assertThat(streamed.toString()).isEqualTo(c.text());
        assertThat(c.stopReason()).isEqualTo(StopReason.MAX_NEW_TOKENS);
    }

    @Test
    void aStopStringFromTheGreedyTextEndsGenerationBeforeIt() {
        Completion full = llama.generate("Hello", GenerationConfig.greedy(24), null, null);
        String text = full.text();
        int at = text.length() / 2;
        String stop = text.substring(at, at + 1);
        Completion stopped = llama.generate("Hello", GenerationConfig.builder().maxNewTokens(24).stopStrings(stop)
                .build(), null, null);
        assertThat(stopped.stopReason()).isEqualTo(StopReason.STOP_STRING);
        assertThat(stopped.text()).isEqualTo(text.substring(0, text.indexOf(stop)));
        assertThat(full.tokens()).startsWith(stopped.tokens());
    }

    @Test
    void cancellingFromAnotherThreadStopsTheGeneration() throws Exception {
        Cancellation cancel = new Cancellation();
        List<Long> seen = new ArrayList<>();
        Completion c = llama.generate(golden.inputIds(), GenerationConfig.greedy(64).withEos(List.of()), (t, d) -> {
            seen.add(t);
            if (seen.size() == 2) {
                Thread other = new Thread(cancel::cancel);
                other.start();
                try {
                    other.join();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }, cancel);
        assertThat(c.stopReason()).isEqualTo(StopReason.CANCELLED);
        assertThat(c.tokens()).hasSize(2).containsExactly(Arrays.copyOf(golden.greedy(), 2));
    }

    @Test
    void aModelWithoutChatTemplateGivesANamedError() {
        assertThatThrownBy(() -> llama.chat(List.of(ChatMessage.user("Hi")), GenerationConfig.greedy(4)))
                .isInstanceOf(NoChatTemplateException.class)
                .hasMessageContaining("chat_template.jinja")
                .hasMessageContaining("tiny-llama");
    }

    /** tiny-llama with tiny-qwen3's ChatML template and generation_config.json ending also at a greedy token. */
    static Path withTemplate(Path tmp, long extraEos) throws IOException {
        Path src = Fixtures.model("tiny-llama");
        try (Stream<Path> files = Files.list(src)) {
            for (Path f : files.toList()) {
                Files.copy(f, tmp.resolve(f.getFileName()));
            }
        }
        Files.copy(Fixtures.model("tiny-qwen3").resolve("chat_template.jinja"), tmp.resolve("chat_template.jinja"));
        Files.writeString(tmp.resolve("generation_config.json"), "{\"eos_token_id\": [2, " + extraEos + "]}");
        return tmp;
    }

    @Test
    void chatRendersTheTemplateTokenizesWithoutSpecialTokensAndStopsAtGenerationConfigsEos(@TempDir Path tmp)
            throws IOException {
        List<ChatMessage> messages = List.of(ChatMessage.system("Be brief."), ChatMessage.user("Hi"));
        long[] plain;
        long[] prompt;
        try (DispatchedModel m = Ferry.model(Fixtures.model("tiny-llama")).load()) {
            String rendered = dev.ferry.core.chat.ChatTemplate.read(Fixtures.model("tiny-qwen3")).orElseThrow()
                    .render(messages, true);
            prompt = m.text().requireTokenizer().encode(rendered, false);
            plain = m.generate(prompt, GenerationConfig.greedy(12).withEos(List.of()));
        }
        long stopAt = plain[3];
        int firstStop = 0;
        while (plain[firstStop] != stopAt && plain[firstStop] != 2) {
            firstStop++;
        }
        try (DispatchedModel m = Ferry.model(withTemplate(tmp, stopAt)).load()) {
            assertThat(m.text().eosTokenIds()).contains(2L, stopAt);
            StringBuilder streamed = new StringBuilder();
            Completion c = m.chat(messages.stream().map(ChatMessage::toMap).toList(), null,
                    GenerationConfig.greedy(12), (t, d) -> streamed.append(d), null);
            assertThat(c.promptTokens()).containsExactly(prompt);
            assertThat(c.tokens()).containsExactly(Arrays.copyOf(plain, firstStop + 1));
            assertThat(c.stopReason()).isEqualTo(StopReason.EOS);
            assertThat(streamed.toString()).isEqualTo(c.text());
            // the plain call takes generation_config.json's ids too
            assertThat(m.generate(prompt, GenerationConfig.greedy(12))).containsExactly(c.tokens());
        }
    }

    @Test
    void qwen3ChatGivesTransformersGreedyTokens() throws IOException {
        assumeThat(ModelFamilies.supportedModelTypes()).as("qwen3 is built by this backend").contains("qwen3");
        Path dir = Fixtures.model("tiny-qwen3");
        JsonNode first = new ObjectMapper().readTree(dir.resolve("chat_golden.json").toFile())
                .get("conversations").get(0);
        List<ChatMessage> messages = new ArrayList<>();
        first.get("messages").forEach(m -> messages.add(new ChatMessage(m.get("role").asText(),
                m.get("content").asText())));
        long[] expected = new ObjectMapper().convertValue(first.get("greedy_new_tokens"), long[].class);
        try (DispatchedModel m = Ferry.model(dir).load()) {
            Completion c = m.chat(messages, GenerationConfig.greedy(expected.length));
            assertThat(c.promptTokens()).containsExactly(new ObjectMapper().convertValue(first.get("ids"),
                    long[].class));
            assertThat(c.tokens()).containsExactly(expected);
            assertThat(c.text()).isEqualTo(first.get("greedy_text").asText());
        }
    }
}

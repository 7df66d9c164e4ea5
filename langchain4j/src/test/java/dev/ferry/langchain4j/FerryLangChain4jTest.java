package dev.ferry.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.core.chat.ChatMessage;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.Fixtures;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.embedding.Embedding;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** LangChain4j's chat, streaming chat and embedding models over tiny-llama given a ChatML template, in process. */
class FerryLangChain4jTest {

    @TempDir
    static Path tmp;
    static DispatchedModel model;
    static Completion expected;

    @BeforeAll
    static void load() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("chat-model"));
        try (Stream<Path> files = Files.list(Fixtures.model("tiny-llama"))) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        Files.copy(Fixtures.model("tiny-qwen3").resolve("chat_template.jinja"), dir.resolve("chat_template.jinja"));
        model = Ferry.model(dir).load();
        expected = model.chat(List.of(ChatMessage.user("Hi")), GenerationConfig.greedy(10));
        assertThat(expected.tokens()).as("a reply long enough to compare").hasSize(10);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    @Test
    void chatModelRepliesAsTheDispatchedModelDoesWithUsage() {
        FerryChatModel chat = FerryChatModel.builder().model(model).maxNewTokens(10).build();
        ChatResponse r = chat.chat(UserMessage.from("Hi"));
        assertThat(r.aiMessage().text()).isEqualTo(expected.text());
        assertThat(r.tokenUsage().inputTokenCount()).isEqualTo(expected.promptTokens().length);
        assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(10);
        assertThat(r.finishReason()).isEqualTo(FinishReason.LENGTH);
    }

    @Test
    void streamingChatModelsPartialsMakeTheSameReply() throws Exception {
        try (FerryStreamingChatModel chat = FerryChatModel.builder().model(model).maxNewTokens(10).buildStreaming()) {
            StreamingCollector collected = new StreamingCollector();
            chat.chat("Hi", collected);
            ChatResponse r = collected.response();
            String partial = collected.partial.toString();
            assertThat(partial).isEqualTo(expected.text());
            assertThat(r.aiMessage().text()).isEqualTo(expected.text());
        }
    }

    @Test
    void requestParametersByNameReachTheGeneration() {
        String stop = expected.text().substring(4, 5);
        FerryChatModel chat = FerryChatModel.builder().model(model).build();
        ChatResponse r = chat.chat(ChatRequest.builder().messages(UserMessage.from("Hi")).maxOutputTokens(10)
                .temperature(0.0).stopSequences(List.of(stop)).build());
        assertThat(r.aiMessage().text()).isEqualTo(expected.text().substring(0, expected.text().indexOf(stop)));
        assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
    }

    @Test
    void toolsForAModelWhoseTemplateWritesNoCallsAreRefusedByName() {
        FerryChatModel chat = FerryChatModel.builder().model(model).build();
        ChatRequest withTool = ChatRequest.builder().messages(UserMessage.from("Hi")).toolSpecifications(
                ToolSpecification.builder().name("weather").build()).build();
        assertThatThrownBy(() -> chat.chat(withTool)).hasMessageContaining("tools")
                .hasMessageContaining("chat-model").hasMessageContaining("<tool_call>");
    }

    @Test
    void embeddingModelGivesTheModelsPooledEmbeddings() {
        FerryEmbeddingModel embeddings = new FerryEmbeddingModel(model, "tiny");
        Embedding e = embeddings.embed("Hello").content();
        float[] direct = model.embed(new long[][] {model.text().requireTokenizer().encode("Hello", true)})[0];
        assertThat(e.vector()).containsExactly(direct);
        assertThat(embeddings.dimension()).isEqualTo(direct.length);
    }
}

package dev.ferry.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.embeddings.CreateEmbeddingResponse;
import com.openai.models.embeddings.EmbeddingCreateParams;
import dev.ferry.core.chat.ChatMessage;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.langchain4j.StreamingCollector;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ferry serve}'s server talked to by clients nobody here wrote: LangChain4j's {@code OpenAiChatModel} and
 * {@code OpenAiStreamingChatModel}, and the official OpenAI Java SDK. Greedy replies equal what the same model gives
 * in process ({@link DispatchedModel#chat}); streamed text equals the whole reply.
 */
class RealClientsTest {

    static final String NAME = "tiny-llama-chat";
    static final int MAX_TOKENS = 12;
    static final String QUESTION = "Hi";

    @TempDir
    static Path tmp;
    static DispatchedModel model;
    static FerryServer server;
    static String expected;

    @BeforeAll
    static void start() throws Exception {
        model = Ferry.model(ChatModels.llamaWithTemplate(tmp)).load();
        server = FerryServer.start(model, ServeOptions.defaults(NAME, 0));
        Completion alone = model.chat(List.of(ChatMessage.user(QUESTION)), GenerationConfig.greedy(MAX_TOKENS));
        expected = alone.text();
        assertThat(alone.tokens()).as("a reply long enough to compare").hasSize(MAX_TOKENS);
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    static String base() {
        return server.baseUri().toString();
    }

    @Test
    void langChain4jChatModelGetsTheGreedyReply() {
        OpenAiChatModel chat = OpenAiChatModel.builder().baseUrl(base()).apiKey("none").modelName(NAME)
                .temperature(0.0).maxTokens(MAX_TOKENS).timeout(Duration.ofSeconds(60)).build();
        ChatResponse r = chat.chat(dev.langchain4j.data.message.UserMessage.from(QUESTION));
        assertThat(r.aiMessage().text()).isEqualTo(expected);
        assertThat(r.tokenUsage().inputTokenCount()).isEqualTo(
                model.text().chatPrompt(List.of(ChatMessage.user(QUESTION).toMap()), null, java.util.Map.of()).length);
        assertThat(r.tokenUsage().outputTokenCount()).isEqualTo(MAX_TOKENS);
    }

    @Test
    void langChain4jStreamingChatModelStreamsTheSameText() throws Exception {
        OpenAiStreamingChatModel chat = OpenAiStreamingChatModel.builder().baseUrl(base()).apiKey("none")
                .modelName(NAME).temperature(0.0).maxTokens(MAX_TOKENS).timeout(Duration.ofSeconds(60)).build();
        StreamingCollector collected = new StreamingCollector();
        chat.chat(QUESTION, collected);
        ChatResponse r = collected.response();
        String partial = collected.partial.toString();
        assertThat(partial).isEqualTo(expected);
        assertThat(r.aiMessage().text()).isEqualTo(expected);
    }

    static OpenAIClient openAi() {
        return OpenAIOkHttpClient.builder().baseUrl(base()).apiKey("none").build();
    }

    @Test
    void openAiSdkChatStreamedEqualsWhole() {
        OpenAIClient client = openAi();
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model(NAME).addUserMessage(QUESTION)
                .maxCompletionTokens(MAX_TOKENS).temperature(0.0).build();
        ChatCompletion whole = client.chat().completions().create(params);
        assertThat(whole.choices().get(0).message().content()).contains(expected);
        assertThat(whole.choices().get(0).finishReason().asString()).isEqualTo("length");
        assertThat(whole.usage().orElseThrow().completionTokens()).isEqualTo(MAX_TOKENS);
        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(params)) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(c -> c.delta().content()
                    .ifPresent(streamed::append)));
        }
        assertThat(streamed.toString()).isEqualTo(expected);
    }

    @Test
    void openAiSdkCompletionOfAPromptEqualsInProcessGeneration() {
        String prompt = "Hello";
        com.openai.models.completions.Completion c = openAi().completions().create(CompletionCreateParams.builder()
                .model(NAME).prompt(prompt).maxTokens((long) MAX_TOKENS).temperature(0.0).build());
        Completion alone = model.generate(prompt, GenerationConfig.greedy(MAX_TOKENS), null, null);
        assertThat(alone.tokens()).isNotEmpty();
        assertThat(c.choices().get(0).text()).isEqualTo(alone.text());
    }

    @Test
    void openAiSdkEmbeddingsArePooledHiddenStates() {
        CreateEmbeddingResponse r = openAi().embeddings().create(EmbeddingCreateParams.builder().model(NAME)
                .input("Hello").build());
        float[] expectedVector = model.embed(new long[][] {model.text().requireTokenizer().encode("Hello", true)})[0];
        List<Float> got = r.data().get(0).embedding();
        assertThat(got).hasSize(expectedVector.length);
        for (int i = 0; i < expectedVector.length; i++) {
            assertThat(got.get(i)).isEqualTo(expectedVector[i]);
        }
        assertThat(r.usage().promptTokens()).isEqualTo(model.text().requireTokenizer().encode("Hello", true).length);
    }
}

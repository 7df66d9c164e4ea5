package dev.ferry.serve;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.models.FunctionDefinition;
import com.openai.models.FunctionParameters;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.chat.completions.ChatCompletionFunctionTool;
import com.openai.models.chat.completions.ChatCompletionMessageFunctionToolCall;
import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.langchain4j.StreamingCollector;
import dev.ferry.core.testing.ScriptedModel;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.openai.OpenAiStreamingChatModel;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tool calls through {@code ferry serve}, as agents built on LangChain4j and the OpenAI SDK use them: a model whose
 * template writes Hermes-form calls ({@code <tool_call>{json}</tool_call>}, Qwen's) replies with one, and the clients
 * get it as OpenAI's {@code tool_calls} with {@code finish_reason: "tool_calls"}, whole and streamed. The model's reply
 * is scripted ({@link ScriptedModel}); tokenizer and template are real.
 */
class ToolCallsServerTest {

    static final String NAME = "tiny-qwen3-tools";
    static final String REPLY = "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            + "{\"city\": \"Paris\"}}\n</tool_call>";

    static final int MAX_TOKENS = 400;

    @TempDir
    static Path tmp;
    static DispatchedModel model;
    static FerryServer server;

    @BeforeAll
    static void start() throws IOException {
        Path dir = ScriptedModel.hermesToolsModel(tmp);
        model = new ScriptedModel(Ferry.model(dir).load(), REPLY);
        server = FerryServer.start(model, ServeOptions.defaults(NAME, 0));
    }

    @AfterAll
    static void stop() {
        server.close();
        model.close();
    }

    static String base() {
        return server.baseUri().toString();
    }

    static ToolSpecification weather() {
        return ToolSpecification.builder().name("get_weather").description("The weather in a city")
                .parameters(JsonObjectSchema.builder().addStringProperty("city").required("city").build()).build();
    }

    static ChatRequest askWithTools() {
        return ChatRequest.builder().messages(UserMessage.from("Weather in Paris?")).toolSpecifications(weather())
                .build();
    }

    static void assertWeatherCall(ToolExecutionRequest call) {
        assertThat(call.name()).isEqualTo("get_weather");
        assertThat(call.arguments()).isEqualTo("{\"city\":\"Paris\"}");
        assertThat(call.id()).startsWith("call_");
    }

    @Test
    void langChain4jChatModelGetsTheToolCall() {
        OpenAiChatModel chat = OpenAiChatModel.builder().baseUrl(base()).apiKey("none").modelName(NAME)
                .temperature(0.0).maxTokens(MAX_TOKENS).timeout(Duration.ofSeconds(60)).build();
        ChatResponse r = chat.chat(askWithTools());
        assertThat(r.aiMessage().toolExecutionRequests()).singleElement().satisfies(ToolCallsServerTest::assertWeatherCall);
        assertThat(r.aiMessage().text()).isEqualTo("Let me check.");
        assertThat(r.finishReason()).isEqualTo(dev.langchain4j.model.output.FinishReason.TOOL_EXECUTION);
    }

    @Test
    void langChain4jStreamingChatModelGetsTheSameToolCallAndStreamsOnlyTheText() throws Exception {
        OpenAiStreamingChatModel chat = OpenAiStreamingChatModel.builder().baseUrl(base()).apiKey("none")
                .modelName(NAME).temperature(0.0).maxTokens(MAX_TOKENS).timeout(Duration.ofSeconds(60)).build();
        StreamingCollector collected = new StreamingCollector();
        chat.chat(askWithTools(), collected);
        ChatResponse r = collected.response();
        String partial = collected.partial.toString();
        assertThat(r.aiMessage().toolExecutionRequests()).singleElement().satisfies(ToolCallsServerTest::assertWeatherCall);
        assertThat(partial.strip()).isEqualTo("Let me check.");
        assertThat(partial).doesNotContain("<tool");
        assertThat(r.finishReason()).isEqualTo(dev.langchain4j.model.output.FinishReason.TOOL_EXECUTION);
    }

    @Test
    void openAiSdkGetsToolCallsAndTheirFinishReason() {
        OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(base()).apiKey("none").build();
        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model(NAME)
                .addUserMessage("Weather in Paris?").maxCompletionTokens(MAX_TOKENS)
                .addTool(ChatCompletionFunctionTool.builder().function(FunctionDefinition.builder().name("get_weather")
                        .parameters(FunctionParameters.builder().putAdditionalProperty("type", JsonValue.from("object"))
                                .build()).build()).build())
                .build();
        ChatCompletion c = client.chat().completions().create(params);
        assertThat(c.choices().get(0).finishReason().asString()).isEqualTo("tool_calls");
        ChatCompletionMessageFunctionToolCall call = c.choices().get(0).message().toolCalls().orElseThrow().get(0)
                .asFunction();
        assertThat(call.function().name()).isEqualTo("get_weather");
        assertThat(call.function().arguments()).isEqualTo("{\"city\":\"Paris\"}");
    }

    static JsonNode post(String body) throws Exception {
        HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(base()
                + "/chat/completions")).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertThat(r.statusCode()).as(r.body()).isEqualTo(200);
        return Requests.JSON.readTree(r.body());
    }

    static final String TOOLS = "[{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", "
            + "\"parameters\": {\"type\": \"object\"}}}]";

    @Test
    void withoutToolsTheReplyIsPlainText() throws Exception {
        JsonNode r = post("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 400}");
        assertThat(r.at("/choices/0/message/content").asText()).isEqualTo(REPLY);
        assertThat(r.at("/choices/0/message/tool_calls").isMissingNode()).isTrue();
        assertThat(r.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void toolChoiceNoneLeavesTheReplyAsText() throws Exception {
        JsonNode r = post("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"tools\": " + TOOLS
                + ", \"tool_choice\": \"none\", \"max_tokens\": 400}");
        assertThat(r.at("/choices/0/message/content").asText()).isEqualTo(REPLY);
        assertThat(r.at("/choices/0/finish_reason").asText()).isEqualTo("stop");
    }

    @Test
    void aPastCallAndItsResultReachTheTemplateWithArgumentsAsAnObject() {
        String body = "{\"messages\": [{\"role\": \"user\", \"content\": \"Weather in Paris?\"},"
                + "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"call_1\", \"type\": "
                + "\"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": "
                + "\\\"Paris\\\"}\"}}]}, {\"role\": \"tool\", \"tool_call_id\": \"call_1\", \"content\": \"sunny\"}],"
                + "\"tools\": " + TOOLS + "}";
        Requests.Chat chat = Requests.chat(Requests.parse(body.getBytes(java.nio.charset.StandardCharsets.UTF_8)), 16);
        String rendered = model.text().chatTemplate().render(chat.messages(), true, chat.tools(), Map.of());
        assertThat(rendered).contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}")
                .contains("<tool_response>\nsunny\n</tool_response>");
    }
}

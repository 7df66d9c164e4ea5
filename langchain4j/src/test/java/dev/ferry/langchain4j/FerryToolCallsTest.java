package dev.ferry.langchain4j;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.core.load.DispatchedModel;
import dev.ferry.core.load.Ferry;
import dev.ferry.core.testing.ScriptedModel;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.json.JsonObjectSchema;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tools through {@code FerryChatModel} and {@code FerryStreamingChatModel} in process: the tool specifications reach
 * the chat template, a Hermes-form call in the reply comes back as a tool execution request, and the next turn (the
 * call and its result) reaches the template as transformers' templates read it. The reply is scripted
 * ({@link ScriptedModel}); tokenizer and template are real.
 */
class FerryToolCallsTest {

    static final String REPLY = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
            + "</tool_call>";

    @TempDir
    static Path tmp;
    static DispatchedModel model;

    @BeforeAll
    static void load() throws IOException {
        Path dir = ScriptedModel.hermesToolsModel(tmp);
        model = new ScriptedModel(Ferry.model(dir).load(), REPLY);
    }

    @AfterAll
    static void close() {
        model.close();
    }

    static ChatRequest askWithTools() {
        return ChatRequest.builder().messages(UserMessage.from("Weather in Paris?")).toolSpecifications(
                ToolSpecification.builder().name("get_weather").description("The weather in a city")
                        .parameters(JsonObjectSchema.builder().addStringProperty("city").required("city").build())
                        .build()).maxOutputTokens(400).build();
    }

    static void assertWeatherCall(ToolExecutionRequest call) {
        assertThat(call.name()).isEqualTo("get_weather");
        assertThat(call.arguments()).isEqualTo("{\"city\":\"Paris\"}");
        assertThat(call.id()).startsWith("call_");
    }

    @Test
    void aCallInTheReplyIsAToolExecutionRequest() {
        ChatResponse r = FerryChatModel.builder().model(model).build().chat(askWithTools());
        assertThat(r.aiMessage().toolExecutionRequests()).singleElement().satisfies(FerryToolCallsTest::assertWeatherCall);
        assertThat(r.aiMessage().text()).isNull();
        assertThat(r.finishReason()).isEqualTo(FinishReason.TOOL_EXECUTION);
    }

    @Test
    void streamedTheCallComesWholeInTheResponseAndNeverAsText() throws Exception {
        StreamingCollector collected = new StreamingCollector();
        try (FerryStreamingChatModel chat = FerryChatModel.builder().model(model).buildStreaming()) {
            chat.chat(askWithTools(), collected);
            ChatResponse r = collected.response();
            assertThat(r.aiMessage().toolExecutionRequests()).singleElement()
                    .satisfies(FerryToolCallsTest::assertWeatherCall);
            assertThat(collected.partial.toString()).isEmpty();
        }
    }

    @Test
    void theCallAndItsResultReachTheTemplateAsItReadsThem() {
        ToolExecutionRequest call = ToolExecutionRequest.builder().id("call_1").name("get_weather")
                .arguments("{\"city\": \"Paris\"}").build();
        List<Map<String, Object>> messages = Conversions.messages(List.of(UserMessage.from("Weather in Paris?"),
                AiMessage.from(List.of(call)), ToolExecutionResultMessage.from(call, "sunny")));
        String rendered = model.text().chatTemplate().render(messages, true,
                Conversions.tools(askWithTools()), Map.of());
        assertThat(rendered)
                .contains("{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": "
                        + "\"The weather in a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": "
                        + "{\"type\": \"string\"}}, \"required\": [\"city\"]}}}")
                .contains("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>")
                .contains("<tool_response>\nsunny\n</tool_response>");
    }
}

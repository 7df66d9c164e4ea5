package dev.ferry.langchain4j;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.chat.ToolCalls;
import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.StopReason;
import dev.ferry.core.load.DispatchedModel;
import dev.langchain4j.agent.tool.ToolExecutionRequest;
import dev.langchain4j.agent.tool.ToolSpecification;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.internal.JsonSchemaElementJsonUtils;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.request.ChatRequestParameters;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.output.FinishReason;
import dev.langchain4j.model.output.TokenUsage;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** LangChain4j's requests and messages to Ferry's, and Ferry's completions back: the one place for the mapping. */
final class Conversions {

    private static final ObjectMapper JSON = new ObjectMapper();

    private Conversions() {
    }

    /** The messages as a chat template reads them ({@code role}, {@code content}). */
    static List<Map<String, Object>> messages(List<ChatMessage> messages) {
        List<Map<String, Object>> out = new ArrayList<>(messages.size());
        for (ChatMessage m : messages) {
            Map<String, Object> map = new LinkedHashMap<>();
            if (m instanceof SystemMessage s) {
                map.put("role", "system");
                map.put("content", s.text());
            } else if (m instanceof UserMessage u) {
                if (!u.hasSingleText()) {
                    throw new IllegalArgumentException("only text user messages are supported, got " + u.contents());
                }
                map.put("role", "user");
                map.put("content", u.singleText());
            } else if (m instanceof AiMessage a) {
                map.put("role", "assistant");
                map.put("content", a.text() == null ? "" : a.text());
                if (a.hasToolExecutionRequests()) {
                    map.put("tool_calls", a.toolExecutionRequests().stream().map(Conversions::toolCall).toList());
                }
            } else if (m instanceof ToolExecutionResultMessage t) {
                map.put("role", "tool");
                map.put("content", t.text());
                map.put("tool_call_id", t.id());
                map.put("name", t.toolName());
            } else {
                throw new IllegalArgumentException("unsupported message type " + m.type());
            }
            out.add(map);
        }
        return out;
    }

    /** A past call as transformers' templates read it: its arguments an object, not OpenAI's JSON string. */
    private static Map<String, Object> toolCall(ToolExecutionRequest r) {
        Object arguments = r.arguments();
        try {
            com.fasterxml.jackson.databind.JsonNode n = JSON.readTree(r.arguments() == null ? "{}" : r.arguments());
            if (n != null && n.isObject()) {
                arguments = JSON.convertValue(n, Map.class);
            }
        } catch (java.io.IOException e) {
            // not JSON: the template gets the text as it is
        }
        Map<String, Object> function = new LinkedHashMap<>();
        function.put("name", r.name());
        function.put("arguments", arguments);
        Map<String, Object> call = new LinkedHashMap<>();
        call.put("id", r.id());
        call.put("type", "function");
        call.put("function", function);
        return call;
    }

    /**
     * The request's tools as a chat template reads them (OpenAI's function form, parameters as JSON schema), or
     * {@code null} when it has none.
     */
    static List<Map<String, Object>> tools(ChatRequest request) {
        List<ToolSpecification> specs = request.parameters() == null ? null
                : request.parameters().toolSpecifications();
        if (specs == null || specs.isEmpty()) {
            return null;
        }
        List<Map<String, Object>> out = new ArrayList<>(specs.size());
        for (ToolSpecification spec : specs) {
            Map<String, Object> function = new LinkedHashMap<>();
            function.put("name", spec.name());
            if (spec.description() != null) {
                function.put("description", spec.description());
            }
            // LangChain4j's own providers map schemas with this helper (public, in its internal package)
            function.put("parameters", spec.parameters() == null ? Map.of("type", "object", "properties", Map.of())
                    : JsonSchemaElementJsonUtils.toMap(spec.parameters()));
            Map<String, Object> tool = new LinkedHashMap<>();
            tool.put("type", "function");
            tool.put("function", function);
            out.add(tool);
        }
        return out;
    }

    /**
     * The form in which the reply is read for calls, {@code null} without tools. Refuses tools a model cannot call:
     * its chat template must write calls in a form Ferry reads back ({@link ToolCalls.Format}), or the reply would
     * only ever be text.
     */
    static ToolCalls.Format toolCallForm(List<Map<String, Object>> tools, DispatchedModel model) {
        if (tools == null) {
            return null;
        }
        return ToolCalls.Format.of(model.text().chatTemplate().source()).orElseThrow(() ->
                new UnsupportedOperationException("tools: the chat template of " + model.text().dir()
                        + " writes no tool calls in a form Ferry reads back (Hermes' <tool_call> of Qwen 2.5/3, "
                        + "Mistral's [TOOL_CALLS], Llama 3.1's JSON); send the request without tools"));
    }

    /**
     * The request's parameters over {@code defaults}: temperature 0 (or none, with greedy defaults) is greedy,
     * above 0 samples; {@code maxOutputTokens}, {@code topP}, {@code topK} and {@code stopSequences} by name.
     */
    static GenerationConfig config(ChatRequestParameters p, GenerationConfig defaults) {
        GenerationConfig.Builder b = defaults.toBuilder();
        if (p == null) {
            return defaults;
        }
        if (p.temperature() != null) {
            b.sample(p.temperature() > 0);
            if (p.temperature() > 0) {
                b.temperature(p.temperature());
            }
        }
        if (p.topP() != null) {
            b.topP(p.topP());
        }
        if (p.topK() != null) {
            b.topK(p.topK());
        }
        if (p.maxOutputTokens() != null) {
            b.maxNewTokens(p.maxOutputTokens());
        }
        if (p.stopSequences() != null && !p.stopSequences().isEmpty()) {
            b.stopStrings(p.stopSequences());
        }
        return b.build();
    }

    /** The completion as LangChain4j's response; with a {@code toolCalls} form, calls in the reply become requests. */
    static ChatResponse response(Completion c, String modelName, ToolCalls.Format toolCalls) {
        FinishReason finish = c.stopReason() == StopReason.EOS || c.stopReason() == StopReason.STOP_STRING
                ? FinishReason.STOP : FinishReason.LENGTH;
        AiMessage message = AiMessage.from(c.text());
        ToolCalls.Parsed parsed = toolCalls != null ? toolCalls.parse(c.text()) : null;
        if (parsed != null && !parsed.calls().isEmpty()) {
            List<ToolExecutionRequest> requests = parsed.calls().stream().map(call -> ToolExecutionRequest.builder()
                    .id(call.id()).name(call.name()).arguments(call.arguments()).build()).toList();
            message = parsed.content().isEmpty() ? AiMessage.from(requests) : AiMessage.from(parsed.content(), requests);
            finish = FinishReason.TOOL_EXECUTION;
        }
        return ChatResponse.builder()
                .aiMessage(message)
                .tokenUsage(new TokenUsage(c.promptTokens().length, c.tokens().length))
                .finishReason(finish)
                .modelName(modelName)
                .build();
    }
}

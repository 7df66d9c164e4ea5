package dev.ferry.langchain4j;

import dev.ferry.core.generate.Completion;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.generate.StopReason;
import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.ChatMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.ToolExecutionResultMessage;
import dev.langchain4j.data.message.UserMessage;
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
            } else if (m instanceof ToolExecutionResultMessage t) {
                map.put("role", "tool");
                map.put("content", t.text());
            } else {
                throw new IllegalArgumentException("unsupported message type " + m.type());
            }
            out.add(map);
        }
        return out;
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

    static ChatResponse response(Completion c, String modelName) {
        return ChatResponse.builder()
                .aiMessage(AiMessage.from(c.text()))
                .tokenUsage(new TokenUsage(c.promptTokens().length, c.tokens().length))
                .finishReason(c.stopReason() == StopReason.EOS || c.stopReason() == StopReason.STOP_STRING
                        ? FinishReason.STOP : FinishReason.LENGTH)
                .modelName(modelName)
                .build();
    }

    static void checkNoTools(ChatRequest request) {
        if (request.parameters() != null && request.parameters().toolSpecifications() != null
                && !request.parameters().toolSpecifications().isEmpty()) {
            throw new UnsupportedOperationException("tools are not supported by FerryChatModel yet");
        }
    }
}

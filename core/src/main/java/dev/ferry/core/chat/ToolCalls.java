package dev.ferry.core.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * Tool calls in a model's reply, read back in the form its chat template taught it. One form so far, Hermes': each call
 * a JSON object {@code {"name": ..., "arguments": {...}}} between {@code <tool_call>} and {@code </tool_call>}, what the
 * templates of Qwen 2.5, Qwen 3, QwQ and Hermes models render and expect (vLLM's {@code hermes} parser reads the
 * same). A template that never writes {@code <tool_call>} gets no parsing: its replies are plain text. Used by
 * {@code ferry serve} (OpenAI's {@code tool_calls}) and {@code ferry-langchain4j} (tool execution requests).
 */
public final class ToolCalls {

    private static final ObjectMapper JSON = new ObjectMapper();

    public static final String OPEN = "<tool_call>";
    public static final String CLOSE = "</tool_call>";

    /** One call: an id for the client to answer with, the function's name, its arguments as a JSON text. */
    public record Call(String id, String name, String arguments) {
    }

    /** A reply split into its text (outside the calls, trimmed; empty when there is none) and its calls. */
    public record Parsed(String content, List<Call> calls) {
    }

    private ToolCalls() {
    }

    /** Whether replies of a model with this chat template can hold calls this class reads. */
    public static boolean readable(String template) {
        return template != null && template.contains(OPEN);
    }

    /**
     * The calls in {@code text} and the text around them. A block whose JSON is not an object with a string
     * {@code name} stays in the text, as written: it is not a call the client could answer.
     */
    public static Parsed parse(String text) {
        List<Call> calls = new ArrayList<>();
        StringBuilder content = new StringBuilder();
        int from = 0;
        while (true) {
            int open = text.indexOf(OPEN, from);
            if (open < 0) {
                content.append(text, from, text.length());
                break;
            }
            int close = text.indexOf(CLOSE, open + OPEN.length());
            int end = close < 0 ? text.length() : close + CLOSE.length();
            Call call = call(text.substring(open + OPEN.length(), close < 0 ? text.length() : close));
            if (call == null) {
                content.append(text, from, end);
            } else {
                content.append(text, from, open);
                calls.add(call);
            }
            from = end;
        }
        return new Parsed(content.toString().strip(), List.copyOf(calls));
    }

    private static Call call(String json) {
        JsonNode n;
        try {
            n = JSON.readTree(json.strip());
        } catch (java.io.IOException e) {
            return null;
        }
        if (n == null || !n.isObject() || !n.path("name").isTextual()) {
            return null;
        }
        JsonNode args = n.has("arguments") ? n.get("arguments") : n.get("parameters");
        String arguments;
        if (args == null || args.isNull()) {
            arguments = "{}";
        } else if (args.isTextual()) {
            arguments = args.asText(); // some models write the arguments as a JSON string already
        } else {
            arguments = args.toString();
        }
        return new Call("call_" + UUID.randomUUID().toString().replace("-", "").substring(0, 24),
                n.get("name").asText(), arguments);
    }

    /**
     * While streaming: where the text that may not go out yet begins. From a {@code <tool_call>} on, everything is
     * held (a call goes out whole, at the end); so is a tail that could be the start of one ({@code "<tool"}).
     */
    public static int holdFrom(CharSequence text) {
        String s = text.toString();
        int open = s.indexOf(OPEN);
        if (open >= 0) {
            return open;
        }
        for (int k = Math.min(OPEN.length() - 1, s.length()); k > 0; k--) {
            if (s.regionMatches(s.length() - k, OPEN, 0, k)) {
                return s.length() - k;
            }
        }
        return s.length();
    }
}

package dev.ferry.core.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.text.StopStrings;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * Tool calls in a model's reply, read back in the form its chat template taught it (the template says which: see
 * {@link Format#of}). Used by {@code ferry serve} (OpenAI's {@code tool_calls}) and {@code ferry-langchain4j} (tool
 * execution requests). A template in none of these forms gets no parsing: its replies are plain text.
 */
public final class ToolCalls {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** One call: an id for the client to answer with, the function's name, its arguments as a JSON text. */
    public record Call(String id, String name, String arguments) {
    }

    /** A reply split into its text (outside the calls, trimmed; empty when there is none) and its calls. */
    public record Parsed(String content, List<Call> calls) {
    }

    /** How a family writes calls. */
    public enum Format {
        /**
         * Hermes': each call {@code {"name": ..., "arguments": {...}}} between {@code <tool_call>} and
         * {@code </tool_call>}, anywhere in the reply (Qwen 2.5, Qwen 3, QwQ, Hermes; vLLM's {@code hermes} parser).
         */
        HERMES("<tool_call>"),
        /**
         * Mistral's: {@code [TOOL_CALLS]} then a JSON array of {@code {"name", "arguments"}} objects. The marker is a
         * special token that decoding may leave out, so a reply that is such an array is read as calls too.
         */
        MISTRAL("[TOOL_CALLS]"),
        /**
         * Llama 3.1–3.3's JSON tool calling: the whole reply one object {@code {"name": ..., "parameters": {...}}}
         * (several separated by {@code ;}), after an optional {@code <|python_tag|>}.
         */
        LLAMA_JSON("<|python_tag|>");

        private final String marker;
        /** The marker found as a stop string is: whole, or a tail of the text that could begin it. */
        private final StopStrings markerSearch;

        Format(String marker) {
            this.marker = marker;
            this.markerSearch = new StopStrings(List.of(marker));
        }

        /** Index of the marker in {@code s}, else of a tail of {@code s} that could begin it, else its length. */
        private int markerFrom(String s) {
            int at = markerSearch.find(s, 0);
            return at >= 0 ? at : markerSearch.safeLength(s);
        }

        /** The form a chat template asks for, by what it writes; empty when it shows none of these. */
        public static Optional<Format> of(String template) {
            if (template == null) {
                return Optional.empty();
            }
            if (template.contains("<tool_call>")) {
                return Optional.of(HERMES);
            }
            if (template.contains("[TOOL_CALLS]")) {
                return Optional.of(MISTRAL);
            }
            if (template.contains("\"parameters\": dictionary of argument name")
                    || template.contains("{\"name\": function name")) {
                return Optional.of(LLAMA_JSON);
            }
            return Optional.empty();
        }

        /**
         * The calls in {@code text} and the text around them. What does not parse as a call (not JSON, no string
         * {@code name}) stays in the text, as written: it is not a call the client could answer.
         */
        public Parsed parse(String text) {
            return switch (this) {
                case HERMES -> hermes(text);
                case MISTRAL -> mistral(text);
                case LLAMA_JSON -> llama(text);
            };
        }

        /**
         * While streaming: where the text that may not go out yet begins (a call goes out whole, at the end). Hermes:
         * from a {@code <tool_call>} on, or a tail that could begin one. Mistral: from its marker (or a tail that
         * could begin it), or all of a reply that opens with {@code [}. Llama: all of a reply that is so far blank or
         * opens with <code>{</code> or the python tag.
         */
        public int holdFrom(CharSequence text) {
            String s = text.toString();
            return switch (this) {
                case HERMES -> markerFrom(s);
                case MISTRAL -> s.stripLeading().startsWith("[") ? leading(s) : markerFrom(s);
                case LLAMA_JSON -> s.isBlank() || opensWith(s, "{", marker) ? leading(s) : s.length();
            };
        }
    }

    /**
     * A streamed reply's text as it may go out: what could be a call in {@code format} is held (a call goes out whole,
     * once the reply is complete and {@link #held} is parsed).
     */
    public static final class Stream {
        private final Format format;
        private final StringBuilder held = new StringBuilder();

        public Stream(Format format) {
            this.format = format;
        }

        /** The part of what is held plus {@code delta} that can go out now (maybe empty). */
        public String release(String delta) {
            held.append(delta);
            int from = format.holdFrom(held);
            String out = held.substring(0, from);
            held.delete(0, from);
            return out;
        }

        /** What is held back so far. */
        public String held() {
            return held.toString();
        }
    }

    private ToolCalls() {
    }

    private static Parsed hermes(String text) {
        String open = "<tool_call>";
        String close = "</tool_call>";
        List<Call> calls = new ArrayList<>();
        StringBuilder content = new StringBuilder();
        int from = 0;
        while (true) {
            int start = text.indexOf(open, from);
            if (start < 0) {
                content.append(text, from, text.length());
                break;
            }
            int end = text.indexOf(close, start + open.length());
            int next = end < 0 ? text.length() : end + close.length();
            Call call = call(text.substring(start + open.length(), end < 0 ? text.length() : end));
            if (call == null) {
                content.append(text, from, next);
            } else {
                content.append(text, from, start);
                calls.add(call);
            }
            from = next;
        }
        return new Parsed(content.toString().strip(), List.copyOf(calls));
    }

    private static Parsed mistral(String text) {
        String marker = Format.MISTRAL.marker;
        int at = text.indexOf(marker);
        String before = at < 0 ? "" : text.substring(0, at);
        String json = (at < 0 ? text : text.substring(at + marker.length())).strip();
        List<Call> calls = new ArrayList<>();
        try {
            JsonNode n = JSON.readTree(json);
            if (n != null && n.isArray() && !n.isEmpty()) {
                for (JsonNode item : n) {
                    Call c = call(item);
                    if (c == null) {
                        return new Parsed(text.strip(), List.of());
                    }
                    calls.add(c);
                }
                return new Parsed(before.strip(), List.copyOf(calls));
            }
        } catch (java.io.IOException e) {
            // not a call list: text
        }
        return new Parsed(text.strip(), List.of());
    }

    private static Parsed llama(String text) {
        String body = text.strip();
        if (body.startsWith(Format.LLAMA_JSON.marker)) {
            body = body.substring(Format.LLAMA_JSON.marker.length()).strip();
        }
        List<Call> calls = new ArrayList<>();
        for (String part : body.split(";")) {
            Call c = call(part);
            if (c == null) {
                return new Parsed(text.strip(), List.of());
            }
            calls.add(c);
        }
        return new Parsed("", List.copyOf(calls));
    }

    private static Call call(String json) {
        try {
            return call(JSON.readTree(json.strip()));
        } catch (java.io.IOException e) {
            return null;
        }
    }

    private static Call call(JsonNode n) {
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

    /** Whether {@code s}, past leading blanks, opens with {@code start} or with (a beginning of) {@code marker}. */
    private static boolean opensWith(String s, String start, String marker) {
        String t = s.stripLeading();
        return t.startsWith(start) || t.startsWith(marker) || (!t.isEmpty() && marker.startsWith(t));
    }

    /** Where the first non-blank character is (all of a blank text). */
    private static int leading(String s) {
        int i = 0;
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
        return i == s.length() ? 0 : i;
    }
}

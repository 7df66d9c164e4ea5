package dev.ferry.serve;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.generate.GenerationConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;

/**
 * OpenAI request bodies read into validated values at the door; a field of the wrong type or out of range is a 400
 * naming it. Sampling follows OpenAI's defaults: {@code temperature} 1 and {@code top_p} 1 (sampled) unless given;
 * {@code temperature} 0 is greedy.
 */
final class Requests {

    static final ObjectMapper JSON = new ObjectMapper();

    private Requests() {
    }

    /** What a generation request asks for, whatever the endpoint. */
    record Generation(boolean stream, boolean includeUsage, GenerationConfig config) {
    }

    /** {@code /v1/chat/completions}: the messages as the template reads them, tools, and how to generate. */
    record Chat(List<Map<String, Object>> messages, List<Map<String, Object>> tools, Generation generation,
                boolean toolCallsWanted) {
    }

    /** {@code /v1/completions}: a text prompt or token ids. */
    record Completion(String prompt, long[] promptIds, Generation generation) {
    }

    /** {@code /v1/embeddings}: texts or token-id lists, and whether to answer floats as base64. */
    record Embeddings(List<String> texts, List<long[]> ids, boolean base64) {
    }

    static JsonNode parse(byte[] body) {
        try {
            JsonNode n = JSON.readTree(body);
            if (n == null || !n.isObject()) {
                throw ApiException.badRequest("the request body must be a JSON object", null);
            }
            return n;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw ApiException.badRequest("the request body is not valid JSON: " + e.getOriginalMessage(), null);
        } catch (java.io.IOException e) {
            throw ApiException.badRequest("the request body is not readable: " + e.getMessage(), null);
        }
    }

    static void checkModel(JsonNode body, String served) {
        JsonNode m = body.get("model");
        if (m != null && !m.isNull() && !m.asText().equals(served)) {
            throw new ApiException(404, "invalid_request_error", "The model '" + m.asText() + "' does not exist; "
                    + "this server serves '" + served + "'", "model", "model_not_found");
        }
    }

    @SuppressWarnings("unchecked")
    static Chat chat(JsonNode body, int defaultMaxTokens) {
        JsonNode messages = body.get("messages");
        if (messages == null || !messages.isArray() || messages.isEmpty()) {
            throw ApiException.badRequest("'messages' must be a non-empty array of {role, content} objects",
                    "messages");
        }
        List<Map<String, Object>> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            if (!m.isObject() || !m.path("role").isTextual()) {
                throw ApiException.badRequest("messages[" + i + "] must be an object with a string 'role'",
                        "messages[" + i + "].role");
            }
            Map<String, Object> message = JSON.convertValue(m, Map.class);
            message.put("content", content(m.get("content"), i));
            argumentsAsObjects(message);
            out.add(message);
        }
        List<Map<String, Object>> tools = null;
        JsonNode t = body.get("tools");
        if (t != null && !t.isNull()) {
            if (!t.isArray()) {
                throw ApiException.badRequest("'tools' must be an array", "tools");
            }
            tools = JSON.convertValue(t, List.class);
        }
        // tool_choice "none": the tools are shown to the template, the reply is read as text
        JsonNode choice = body.get("tool_choice");
        boolean wanted = tools != null && !tools.isEmpty() && !(choice != null && "none".equals(choice.asText()));
        return new Chat(out, tools, generation(body, defaultMaxTokens), wanted);
    }

    /**
     * OpenAI's protocol sends a past call's arguments as a JSON string; chat templates (transformers' convention)
     * render them as an object ({@code tool_call.arguments | tojson}), so a string that is a JSON object becomes one.
     */
    @SuppressWarnings("unchecked")
    private static void argumentsAsObjects(Map<String, Object> message) {
        if (!(message.get("tool_calls") instanceof List<?> calls)) {
            return;
        }
        for (Object c : calls) {
            if (c instanceof Map<?, ?> call && call.get("function") instanceof Map<?, ?> f
                    && f.get("arguments") instanceof String text) {
                try {
                    JsonNode parsed = JSON.readTree(text);
                    if (parsed != null && parsed.isObject()) {
                        ((Map<String, Object>) f).put("arguments", JSON.convertValue(parsed, Map.class));
                    }
                } catch (java.io.IOException e) {
                    // not JSON: the template gets the text as the client sent it
                }
            }
        }
    }

    /** A message's content as text: a string, or the text parts of an array of content parts. */
    private static String content(JsonNode c, int i) {
        if (c == null || c.isNull()) {
            return "";
        }
        if (c.isTextual()) {
            return c.asText();
        }
        if (c.isArray()) {
            StringBuilder b = new StringBuilder();
            for (JsonNode part : c) {
                if (!"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.badRequest("messages[" + i + "].content: only text parts are supported, got "
                            + part.path("type").asText("?"), "messages[" + i + "].content");
                }
                b.append(part.get("text").asText());
            }
            return b.toString();
        }
        throw ApiException.badRequest("messages[" + i + "].content must be a string or an array of text parts",
                "messages[" + i + "].content");
    }

    static Completion completion(JsonNode body, int defaultMaxTokens) {
        JsonNode p = body.get("prompt");
        if (p != null && p.isArray() && p.size() == 1 && (p.get(0).isTextual() || p.get(0).isArray())) {
            p = p.get(0); // a batch of one
        }
        Generation g = generation(body, defaultMaxTokens);
        if (p != null && p.isTextual()) {
            return new Completion(p.asText(), null, g);
        }
        if (p != null && p.isArray() && !p.isEmpty() && allIntegers(p)) {
            long[] ids = new long[p.size()];
            for (int i = 0; i < ids.length; i++) {
                ids[i] = p.get(i).asLong();
            }
            return new Completion(null, ids, g);
        }
        throw ApiException.badRequest("'prompt' must be a string or an array of token ids (one prompt per request)",
                "prompt");
    }

    static Embeddings embeddings(JsonNode body) {
        JsonNode in = body.get("input");
        List<String> texts = new ArrayList<>();
        List<long[]> ids = new ArrayList<>();
        if (in != null && in.isTextual()) {
            texts.add(in.asText());
        } else if (in != null && in.isArray() && !in.isEmpty() && allIntegers(in)) {
            ids.add(longs(in));
        } else if (in != null && in.isArray() && !in.isEmpty()) {
            for (JsonNode e : in) {
                if (e.isTextual()) {
                    texts.add(e.asText());
                } else if (e.isArray() && !e.isEmpty() && allIntegers(e)) {
                    ids.add(longs(e));
                } else {
                    throw ApiException.badRequest("'input' items must be strings or arrays of token ids", "input");
                }
            }
            if (!texts.isEmpty() && !ids.isEmpty()) {
                throw ApiException.badRequest("'input' mixes strings and token ids", "input");
            }
        } else {
            throw ApiException.badRequest("'input' must be a string, an array of strings, or token ids", "input");
        }
        String format = body.path("encoding_format").asText("float");
        if (!format.equals("float") && !format.equals("base64")) {
            throw ApiException.badRequest("'encoding_format' must be 'float' or 'base64'", "encoding_format");
        }
        return new Embeddings(texts, ids, format.equals("base64"));
    }

    private static boolean allIntegers(JsonNode array) {
        for (JsonNode e : array) {
            if (!e.isIntegralNumber()) {
                return false;
            }
        }
        return true;
    }

    private static long[] longs(JsonNode array) {
        long[] out = new long[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asLong();
        }
        return out;
    }

    static Generation generation(JsonNode body, int defaultMaxTokens) {
        int n = integer(body, "n", 1);
        if (n != 1) {
            throw ApiException.badRequest("'n' must be 1: one choice per request", "n");
        }
        int maxTokens = integer(body, "max_completion_tokens", integer(body, "max_tokens", defaultMaxTokens));
        if (maxTokens < 1) {
            throw ApiException.badRequest("'max_tokens' must be >= 1, got " + maxTokens, "max_tokens");
        }
        double temperature = number(body, "temperature", 1.0);
        if (temperature < 0 || temperature > 2) {
            throw ApiException.badRequest("'temperature' must be in [0, 2], got " + temperature, "temperature");
        }
        double topP = number(body, "top_p", 1.0);
        if (!(topP > 0 && topP <= 1)) {
            throw ApiException.badRequest("'top_p' must be in (0, 1], got " + topP, "top_p");
        }
        int topK = integer(body, "top_k", 0);
        if (topK < 0) {
            throw ApiException.badRequest("'top_k' must be >= 0, got " + topK, "top_k");
        }
        long seed = body.hasNonNull("seed") ? longValue(body, "seed") : ThreadLocalRandom.current().nextLong();
        List<String> stops = new ArrayList<>();
        JsonNode stop = body.get("stop");
        if (stop != null && stop.isTextual()) {
            stops.add(stop.asText());
        } else if (stop != null && stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual() || s.asText().isEmpty()) {
                    throw ApiException.badRequest("'stop' items must be non-empty strings", "stop");
                }
                stops.add(s.asText());
            }
        } else if (stop != null && !stop.isNull()) {
            throw ApiException.badRequest("'stop' must be a string or an array of strings", "stop");
        }
        if (stops.stream().anyMatch(String::isEmpty)) {
            throw ApiException.badRequest("'stop' may not be empty", "stop");
        }
        boolean stream = body.path("stream").asBoolean(false);
        boolean includeUsage = body.path("stream_options").path("include_usage").asBoolean(false);
        GenerationConfig.Builder config = GenerationConfig.builder().maxNewTokens(maxTokens).stopStrings(stops);
        if (temperature > 0) {
            config.sample(true).temperature(temperature).topP(topP).topK(topK).seed(seed);
        }
        return new Generation(stream, includeUsage, config.build());
    }

    private static int integer(JsonNode body, String key, int fallback) {
        JsonNode v = body.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw ApiException.badRequest("'" + key + "' must be an integer, got " + v, key);
        }
        return v.asInt();
    }

    private static long longValue(JsonNode body, String key) {
        JsonNode v = body.get(key);
        if (!v.isIntegralNumber() || !v.canConvertToLong()) {
            throw ApiException.badRequest("'" + key + "' must be an integer, got " + v, key);
        }
        return v.asLong();
    }

    private static double number(JsonNode body, String key, double fallback) {
        JsonNode v = body.get(key);
        if (v == null || v.isNull()) {
            return fallback;
        }
        if (!v.isNumber()) {
            throw ApiException.badRequest("'" + key + "' must be a number, got " + v, key);
        }
        return v.asDouble();
    }
}

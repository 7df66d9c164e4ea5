package dev.ferry.cli;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.chat.ChatTemplate;
import dev.ferry.core.chat.ChatTemplateException;
import dev.ferry.core.io.RegularFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** {@code --messages FILE.json}: a conversation read, checked, rendered by the model's chat template and tokenized. */
final class ChatPrompt {

    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatPrompt() {
    }

    /**
     * The prompt ids, as transformers' {@code apply_chat_template(messages, add_generation_prompt=True,
     * tokenize=True)}: the rendered text encoded without special tokens added.
     *
     * @throws UsageException naming the file or the model folder: not a JSON list of role/content objects, no chat
     *                        template, or a conversation the template refuses
     */
    static long[] ids(Path model, Path file, HuggingFaceTokenizer tokenizer) {
        List<Map<String, Object>> messages = read(file);
        ChatTemplate template = ChatTemplate.read(model).orElseThrow(() -> new UsageException("--messages: " + model
                + " has no chat template (neither chat_template.jinja nor a chat_template in tokenizer_config.json); "
                + "pass the prompt with --prompt or --input-ids"));
        String text;
        try {
            text = template.render(messages, true, null, Map.of());
        } catch (ChatTemplateException e) {
            throw new UsageException("--messages " + file + ": " + e.getMessage(), e);
        }
        return tokenizer.encode(text, false, false).getIds();
    }

    @SuppressWarnings("unchecked")
    static List<Map<String, Object>> read(Path file) {
        String why = RegularFiles.problem(file);
        if (why != null) {
            throw new UsageException("--messages " + file + " " + why);
        }
        JsonNode n;
        try {
            n = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new UsageException("--messages " + file + ": not readable JSON: " + e.getMessage(), e);
        }
        if (n == null || !n.isArray() || n.isEmpty()) {
            throw new UsageException("--messages " + file + ": expected a non-empty JSON list of {\"role\", "
                    + "\"content\"} objects");
        }
        for (int i = 0; i < n.size(); i++) {
            JsonNode m = n.get(i);
            if (!m.isObject() || !m.path("role").isTextual() || !m.has("content")) {
                throw new UsageException("--messages " + file + ": message " + i + " is not a {\"role\": string, "
                        + "\"content\": ...} object: " + m);
            }
        }
        return JSON.convertValue(n, List.class);
    }
}

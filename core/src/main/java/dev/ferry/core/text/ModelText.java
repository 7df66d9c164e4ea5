package dev.ferry.core.text;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.chat.ChatTemplate;
import dev.ferry.core.chat.NoChatTemplateException;
import dev.ferry.core.generate.GenerationConfig;
import dev.ferry.core.io.RegularFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;

/**
 * What a model folder says about text: its tokenizer ({@code tokenizer.json}, opened on first use by the backend's
 * binding), its end-of-sequence ids (config.json's and every one of generation_config.json's, as transformers'
 * {@code generate} stops at any of them) and its chat template ({@code chat_template.jinja} or
 * {@code tokenizer_config.json}). Owned by a dispatched model, closed with it.
 */
public final class ModelText implements AutoCloseable {

    private final Path dir;
    private final List<Long> eosTokenIds;
    private final Function<Path, TextTokenizer> tokenizers;
    private TextTokenizer tokenizer;
    private Optional<ChatTemplate> template;
    private boolean closed;

    private ModelText(Path dir, List<Long> eosTokenIds, Function<Path, TextTokenizer> tokenizers) {
        this.dir = dir;
        this.eosTokenIds = List.copyOf(eosTokenIds);
        this.tokenizers = tokenizers;
    }

    /**
     * @param configEos  config.json's {@code eos_token_id}s
     * @param tokenizers opens {@code tokenizer.json} (the backend's binding); called at most once
     * @throws IllegalArgumentException when generation_config.json is not valid JSON
     */
    public static ModelText of(Path dir, List<Long> configEos, Function<Path, TextTokenizer> tokenizers) {
        return new ModelText(dir, eosTokenIds(dir, configEos), tokenizers);
    }

    /** {@code configEos} (config.json's) followed by generation_config.json's ids that it lacks. */
    public static List<Long> eosTokenIds(Path dir, List<Long> configEos) {
        Set<Long> eos = new LinkedHashSet<>(configEos);
        eos.addAll(generationConfigEos(dir));
        return new ArrayList<>(eos);
    }

    /** generation_config.json's {@code eos_token_id} (a number or a list); empty without the file. */
    static List<Long> generationConfigEos(Path dir) {
        Path file = dir.resolve("generation_config.json");
        if (!Files.exists(file)) {
            return List.of();
        }
        RegularFiles.require(file, "generation config");
        JsonNode n;
        try {
            n = new ObjectMapper().readTree(file.toFile()).get("eos_token_id");
        } catch (IOException e) {
            throw new IllegalArgumentException(file + " is not valid JSON: " + e.getMessage(), e);
        }
        List<Long> out = new ArrayList<>();
        if (n != null && n.isArray()) {
            n.forEach(e -> out.add(e.asLong()));
        } else if (n != null && n.isIntegralNumber()) {
            out.add(n.asLong());
        }
        return out;
    }

    /** The model folder. */
    public Path dir() {
        return dir;
    }

    /** Every end-of-sequence id: config.json's, then generation_config.json's. */
    public List<Long> eosTokenIds() {
        return eosTokenIds;
    }

    /** {@code config} with the model's end-of-sequence ids where it names none. */
    public GenerationConfig withEos(GenerationConfig config) {
        java.util.Objects.requireNonNull(config, "config is null: pass a GenerationConfig, e.g. GenerationConfig.greedy(16)");
        return config.eosTokenIds() == null ? config.withEos(eosTokenIds) : config;
    }

    /** The folder's tokenizer; empty when it has no {@code tokenizer.json}. */
    public synchronized Optional<TextTokenizer> tokenizer() {
        if (closed) {
            throw new IllegalStateException("the model is closed");
        }
        if (tokenizer == null && Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            tokenizer = tokenizers.apply(dir.resolve("tokenizer.json"));
        }
        return Optional.ofNullable(tokenizer);
    }

    /** @throws IllegalStateException naming the folder when it has no {@code tokenizer.json} */
    public TextTokenizer requireTokenizer() {
        return tokenizer().orElseThrow(() -> new IllegalStateException("no tokenizer: " + dir
                + " has no tokenizer.json; pass token ids"));
    }

    /**
     * The folder's chat template.
     *
     * @throws NoChatTemplateException naming the folder and where a template is looked for, when it has none
     */
    public synchronized ChatTemplate chatTemplate() {
        if (template == null) {
            template = ChatTemplate.read(dir);
        }
        return template.orElseThrow(() -> new NoChatTemplateException("no chat template: " + dir
                + " has neither chat_template.jinja nor a chat_template in tokenizer_config.json; pass a prompt "
                + "or token ids instead of messages"));
    }

    /**
     * A conversation as prompt ids, as transformers' {@code apply_chat_template(messages, tools=...,
     * add_generation_prompt=True, tokenize=True)}: the rendered text encoded without adding special tokens (the
     * template wrote those it wants).
     */
    public long[] chatPrompt(List<? extends Map<String, ?>> messages, List<? extends Map<String, ?>> tools,
                             Map<String, ?> extra) {
        String text = chatTemplate().render(messages, true, tools, extra);
        return requireTokenizer().encode(text, false);
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (tokenizer != null) {
            tokenizer.close();
            tokenizer = null;
        }
    }
}

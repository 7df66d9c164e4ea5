package dev.ferry.core.chat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import dev.ferry.core.io.RegularFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import jinjava.javax.el.CompositeELResolver;

/**
 * A model's chat template, rendered as transformers' {@code apply_chat_template} renders it: Jinja with
 * {@code trim_blocks} and {@code lstrip_blocks}, the special tokens of {@code tokenizer_config.json}
 * ({@code bos_token}, {@code eos_token}, ...) as variables, {@code messages}, {@code tools},
 * {@code add_generation_prompt} and any extra variables ({@code enable_thinking}), the functions
 * {@code raise_exception} and {@code strftime_now}, and {@code tojson} as Python's {@code json.dumps}.
 *
 * <p>The engine is Jinjava (HubSpot's Jinja for Java). Templates are written for Python's Jinja, so three things are
 * adapted: Python's string methods ({@link PythonStrings}), two constructs Jinjava parses differently
 * ({@link JinjaDialect}) and {@code tojson}'s formatting ({@link PythonJson}). Rendering is thread-safe.
 */
public final class ChatTemplate {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;
    private final String adapted;
    private final Map<String, String> specialTokens;
    private final Jinjava jinjava;

    private ChatTemplate(String source, Map<String, String> specialTokens) {
        this.source = source;
        this.adapted = JinjaDialect.adapt(source);
        this.specialTokens = Map.copyOf(specialTokens);
        this.jinjava = engine();
    }

    /** A template from its Jinja source, with these special tokens as variables ({@code bos_token} -> {@code <s>}). */
    public static ChatTemplate of(String source, Map<String, String> specialTokens) {
        return new ChatTemplate(source, specialTokens);
    }

    /**
     * The template of a model folder: {@code chat_template.jinja}, else {@code tokenizer_config.json}'s
     * {@code chat_template} (a string, or a list of named templates of which {@code default} is taken); the special
     * tokens from {@code tokenizer_config.json}. Empty when the folder has no template.
     *
     * @throws IllegalArgumentException when tokenizer_config.json is not valid JSON, or it or chat_template.jinja is
     *                                  not a regular file, naming the file
     */
    public static Optional<ChatTemplate> read(Path dir) {
        Path configFile = dir.resolve("tokenizer_config.json");
        JsonNode config = null;
        if (present(configFile, "tokenizer config")) {
            try {
                config = JSON.readTree(configFile.toFile());
            } catch (IOException e) {
                throw new IllegalArgumentException(configFile + " is not valid JSON: " + e.getMessage(), e);
            }
        }
        Map<String, String> special = config == null ? Map.of() : specialTokens(config);
        Path jinja = dir.resolve("chat_template.jinja");
        if (present(jinja, "chat template")) {
            try {
                return Optional.of(of(Files.readString(jinja), special));
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + jinja + ": " + e.getMessage(), e);
            }
        }
        JsonNode t = config == null ? null : config.get("chat_template");
        if (t != null && t.isTextual()) {
            return Optional.of(of(t.asText(), special));
        }
        if (t != null && t.isArray()) {
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText()) && named.path("template").isTextual()) {
                    return Optional.of(of(named.get("template").asText(), special));
                }
            }
        }
        return Optional.empty();
    }

    /** Whether {@code file} is there; one that is there but is no regular file (a FIFO) is refused by name. */
    private static boolean present(Path file, String what) {
        if (!Files.exists(file)) {
            return false;
        }
        RegularFiles.require(file, what);
        return true;
    }

    /** Every {@code *_token} of tokenizer_config.json given as a string or as {@code {"content": ...}}. */
    static Map<String, String> specialTokens(JsonNode config) {
        Map<String, String> out = new LinkedHashMap<>();
        config.fields().forEachRemaining(e -> {
            if (e.getKey().endsWith("_token")) {
                JsonNode v = e.getValue();
                if (v.isTextual()) {
                    out.put(e.getKey(), v.asText());
                } else if (v.isObject() && v.path("content").isTextual()) {
                    out.put(e.getKey(), v.get("content").asText());
                }
            }
        });
        return out;
    }

    /** The Jinja source as the model ships it. */
    public String source() {
        return source;
    }

    /** The special tokens given to the template as variables. */
    public Map<String, String> specialTokens() {
        return specialTokens;
    }

    /** {@link #render(List, boolean, List, Map)} of plain messages, no tools, no extra variables. */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages.stream().map(ChatMessage::toMap).toList(), addGenerationPrompt, null, Map.of());
    }

    /**
     * The prompt text of a conversation.
     *
     * @param messages            each a map with at least {@code role} and {@code content} (more fields as the
     *                            template reads them: {@code tool_calls}, {@code reasoning_content})
     * @param addGenerationPrompt whether to end with the start of an assistant turn
     * @param tools               tool definitions (JSON schema maps) or {@code null}
     * @param extra               further variables ({@code enable_thinking}); they override the special tokens
     * @throws ChatTemplateException when the template raises an exception or cannot be rendered
     */
    public String render(List<? extends Map<String, ?>> messages, boolean addGenerationPrompt,
                         List<? extends Map<String, ?>> tools, Map<String, ?> extra) {
        Map<String, Object> context = new HashMap<>(specialTokens);
        context.put("messages", messages);
        context.put("add_generation_prompt", addGenerationPrompt);
        if (tools != null) {
            context.put("tools", tools);
        }
        context.putAll(extra);
        RenderResult result;
        try {
            result = jinjava.renderForResult(adapted, context);
        } catch (TemplateRaised e) {
            throw new ChatTemplateException("the chat template refused the conversation: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new ChatTemplateException("cannot render the chat template: " + e.getMessage(), e);
        }
        for (TemplateError error : result.getErrors()) {
            Throwable raised = raised(error.getException());
            if (raised != null) {
                throw new ChatTemplateException("the chat template refused the conversation: " + raised.getMessage(),
                        raised);
            }
        }
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new ChatTemplateException("cannot render the chat template (line " + error.getLineno() + "): "
                        + error.getMessage());
            }
        }
        return result.getOutput();
    }

    private static Throwable raised(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TemplateRaised) {
                return t;
            }
        }
        return null;
    }

    private static Jinjava engine() {
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PythonStrings());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY); // templates read messages, never change them
        LegacyOverrides python = LegacyOverrides.newBuilder()
                .withParseWhitespaceControlStrictly(true)   // {{- and -}} trim as Python's Jinja does
                .withUseTrimmingForNotesAndExpressions(true)
                .withUseNaturalOperatorPrecedence(true)
                .withKeepNullableLoopValues(true)
                .withUsePyishObjectMapper(true)            // True/False, {'a': 1} as Python prints them
                .build();
        Jinjava j = new Jinjava(JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                .withLegacyOverrides(python)
                .withElResolver(resolver)
                .build());
        try {
            j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception",
                    ChatTemplate.class.getDeclaredMethod("raiseException", String.class)));
            j.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now",
                    ChatTemplate.class.getDeclaredMethod("strftimeNow", String.class)));
        } catch (NoSuchMethodException e) {
            throw new IllegalStateException(e);
        }
        j.getGlobalContext().registerFilter(new ToJson());
        return j;
    }

    /** {@code raise_exception(message)}: how a template refuses a conversation. */
    public static String raiseException(String message) {
        throw new TemplateRaised(message);
    }

    /** {@code strftime_now(format)}: the local time in Python's strftime format (the common directives). */
    public static String strftimeNow(String format) {
        LocalDateTime now = LocalDateTime.now();
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                b.append(c);
                continue;
            }
            char d = format.charAt(++i);
            String pattern = switch (d) {
                case 'Y' -> "yyyy";
                case 'm' -> "MM";
                case 'd' -> "dd";
                case 'B' -> "MMMM";
                case 'b' -> "MMM";
                case 'H' -> "HH";
                case 'M' -> "mm";
                case 'S' -> "ss";
                case 'A' -> "EEEE";
                case 'a' -> "EEE";
                case 'y' -> "yy";
                default -> null;
            };
            b.append(pattern == null ? "%" + d : now.format(DateTimeFormatter.ofPattern(pattern, Locale.ENGLISH)));
        }
        return b.toString();
    }

    /** Thrown by {@code raise_exception}. */
    static final class TemplateRaised extends RuntimeException {
        TemplateRaised(String message) {
            super(message);
        }
    }

    /** {@code tojson} as transformers defines it: {@code json.dumps(x, ensure_ascii=False, indent=..., sort_keys=...)}. */
    private static final class ToJson implements Filter {
        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, String... args) {
            return PythonJson.dumps(var, args.length > 0 && args[0] != null ? Integer.valueOf(args[0]) : null, false);
        }

        @Override
        public Object filter(Object var, JinjavaInterpreter interpreter, Object[] args, Map<String, Object> kwargs) {
            Object indent = kwargs.containsKey("indent") ? kwargs.get("indent") : args.length > 0 ? args[0] : null;
            boolean sort = Boolean.TRUE.equals(kwargs.get("sort_keys"));
            return PythonJson.dumps(var, indent == null ? null : ((Number) indent).intValue(), sort);
        }
    }
}

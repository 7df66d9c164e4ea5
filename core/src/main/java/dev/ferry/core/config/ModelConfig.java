package dev.ferry.core.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.ferry.core.tensor.DType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A Hugging Face {@code config.json}, read with the defaults transformers applies. */
public class ModelConfig {

    private final JsonNode json;

    public ModelConfig(JsonNode json) {
        if (json == null || !json.isObject()) {
            throw new IllegalArgumentException("a model config is a JSON object");
        }
        this.json = json;
    }

    public static ModelConfig read(Path configOrDir) {
        Path file = Files.isDirectory(configOrDir) ? configOrDir.resolve("config.json") : configOrDir;
        String why = dev.ferry.core.io.RegularFiles.problem(file);
        if (why != null && Files.exists(file)) {
            throw new IllegalArgumentException("model config " + file + " " + why);
        }
        try {
            return new ModelConfig(new ObjectMapper().readTree(file.toFile()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read model config " + file + ": " + e.getMessage(), e);
        }
    }

    public static ModelConfig parse(String json) {
        try {
            return new ModelConfig(new ObjectMapper().readTree(json));
        } catch (IOException e) {
            throw new IllegalArgumentException("invalid model config JSON: " + e.getMessage(), e);
        }
    }

    public JsonNode json() {
        return json;
    }

    public String modelType() {
        JsonNode n = json.get("model_type");
        if (n == null || !n.isTextual()) {
            throw new IllegalArgumentException("config.json has no model_type");
        }
        return n.asText();
    }

    public boolean has(String key) {
        JsonNode n = json.get(key);
        return n != null && !n.isNull();
    }

    /** The integers of this config, read without wrapping and range-checked (core's one rule for them). */
    public ConfigNumbers numbers() {
        return new ConfigNumbers(json, "config.json");
    }

    /**
     * The model's sizes, checked by core's one rule for config numbers ({@link DecoderShape#fromConfig}).
     *
     * @throws dev.ferry.core.config.ConfigException naming the field at fault
     */
    public DecoderShape shape() {
        return DecoderShape.fromConfig(json, "config.json");
    }

    /**
     * {@code key} as an {@code int}; a value that is not an integer or lies outside {@code int} range is a
     * {@link dev.ferry.core.config.ConfigException} naming the key, never wrapped.
     */
    public int integer(String key) {
        if (!has(key)) {
            throw new IllegalArgumentException("config.json of model_type '" + modelType() + "' lacks '" + key + "'");
        }
        return numbers().integer(key);
    }

    public int integer(String key, int fallback) {
        return has(key) ? integer(key) : fallback;
    }

    /**
     * {@code key} as a number, or {@code fallback} when absent or {@code null}; a string or boolean where a number
     * belongs is a {@link ConfigException} naming the key (never read as 0).
     */
    public double number(String key, double fallback) {
        if (!has(key)) {
            return fallback;
        }
        JsonNode n = json.get(key);
        if (!n.isNumber()) {
            throw new ConfigException(key, "config.json: " + key + " must be a number, got " + n);
        }
        return n.doubleValue();
    }

    public boolean bool(String key, boolean fallback) {
        return has(key) ? json.get(key).asBoolean() : fallback;
    }

    public String string(String key, String fallback) {
        return has(key) ? json.get(key).asText() : fallback;
    }

    /** {@code eos_token_id}, which may be a number or a list. */
    public List<Long> eosTokenIds() {
        List<Long> out = new ArrayList<>();
        JsonNode n = json.get("eos_token_id");
        if (n != null && n.isArray()) {
            n.forEach(e -> out.add(e.asLong()));
        } else if (n != null && n.isNumber()) {
            out.add(n.asLong());
        }
        return out;
    }

    /** The checkpoint dtype ({@code dtype}, formerly {@code torch_dtype}); float32 when absent. */
    public DType dtype() {
        String s = string("dtype", string("torch_dtype", "float32"));
        return DType.fromTorch(s);
    }

    /** The rotary-embedding parameters, typed and range-checked ({@link RopeParameters#of}). */
    public RopeParameters ropeParameters() {
        return RopeParameters.of(json, "config.json");
    }

    /**
     * The RoPE parameters as JSON, for families whose rope kinds {@link RopeParameters} does not type (per layer
     * kind, LongRoPE): transformers 5 writes {@code rope_parameters}, older configs {@code rope_theta} and
     * {@code rope_scaling}; the result has at least {@code rope_theta} and {@code rope_type}. Its numbers are
     * checked where a family reads them.
     */
    public JsonNode ropeParametersJson() {
        var out = com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        out.put("rope_theta", numbers().positiveReal("rope_theta", 10000.0));
        out.put("rope_type", "default");
        JsonNode scaling = json.get("rope_scaling");
        if (scaling != null && scaling.isObject()) {
            out.setAll((com.fasterxml.jackson.databind.node.ObjectNode) scaling);
            if (scaling.has("type") && !scaling.has("rope_type")) {
                out.set("rope_type", scaling.get("type"));
            }
        }
        JsonNode params = json.get("rope_parameters");
        if (params != null && params.isObject()) {
            out.setAll((com.fasterxml.jackson.databind.node.ObjectNode) params);
        }
        return out;
    }

    @Override
    public String toString() {
        return json.toString();
    }
}

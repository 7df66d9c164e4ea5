package dev.ferry.pytorch.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.config.DecoderShape;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.IntFunction;

/**
 * A {@code config.json} as one family reads it: core's {@link ModelConfig} (which owns the rules for numbers) plus
 * the family's {@code model_type} in every message, so a field the family needs but the config lacks is a
 * {@link ConfigException} naming the field and the family.
 */
public final class FamilyConfig {

    /** transformers' names of the attention kinds a layer may have ({@code layer_types}). */
    public static final String FULL = "full_attention";
    public static final String SLIDING = "sliding_attention";
    private static final Set<String> LAYER_KINDS = Set.of(FULL, SLIDING);

    private final ModelConfig config;
    private final String modelType;

    public FamilyConfig(ModelConfig config) {
        this.config = config;
        this.modelType = config.modelType();
    }

    public ModelConfig config() {
        return config;
    }

    public String modelType() {
        return modelType;
    }

    /** The sizes, checked by core's one rule. */
    public DecoderShape shape() {
        return config.shape();
    }

    public boolean has(String key) {
        return config.has(key);
    }

    /** A finite number > 0 the family cannot do without (a scale, a base frequency). */
    public double required(String key) {
        if (!config.has(key)) {
            throw missing(key);
        }
        return config.numbers().positiveReal(key);
    }

    public double number(String key, double fallback) {
        JsonNode n = config.json().get(key);
        if (n != null && !n.isNull() && !n.isNumber()) {
            throw new ConfigException(key, "config.json of model_type '" + modelType + "': " + key
                    + " must be a number, got " + n);
        }
        return config.number(key, fallback);
    }

    /** A finite number > 0 (an epsilon, a scale), {@code fallback} when absent; core's one rule for such numbers. */
    public double positive(String key, double fallback) {
        return config.numbers().positiveReal(key, fallback);
    }

    /** A number that may be absent or {@code null} (then 0, meaning "off", as soft-capping reads it). */
    public double optional(String key) {
        return config.has(key) ? number(key, 0) : 0;
    }

    public boolean bool(String key, boolean fallback) {
        return config.bool(key, fallback);
    }

    public String string(String key, String fallback) {
        return config.string(key, fallback);
    }

    /** A positive integer the family cannot do without. */
    public int requiredPositive(String key) {
        if (!config.has(key)) {
            throw missing(key);
        }
        return config.numbers().positive(key);
    }

    /**
     * Each layer's attention kind: {@code layer_types} when the config has it (transformers 5 writes it), else
     * {@code fallback} per layer index (the rule older configs imply). Kinds other than full and sliding attention
     * are refused by name.
     */
    public List<String> layerTypes(int layers, IntFunction<String> fallback) {
        JsonNode n = config.json().get("layer_types");
        List<String> out = new ArrayList<>();
        if (n == null || n.isNull()) {
            for (int i = 0; i < layers; i++) {
                out.add(fallback.apply(i));
            }
            return out;
        }
        if (!n.isArray() || n.size() != layers) {
            throw new ConfigException("layer_types", "config.json of model_type '" + modelType
                    + "': layer_types must list one kind per layer (" + layers + "), got " + n);
        }
        n.forEach(e -> {
            if (!LAYER_KINDS.contains(e.asText())) {
                throw new ConfigException("layer_types", "config.json of model_type '" + modelType
                        + "': layer_types lists attention kind '" + e.asText() + "', which is not supported; supported: " + FULL + ", "
                        + SLIDING);
            }
            out.add(e.asText());
        });
        return out;
    }

    public ConfigException missing(String key) {
        return new ConfigException(key, "config.json of model_type '" + modelType + "' lacks '" + key
                + "', which the family needs");
    }
}

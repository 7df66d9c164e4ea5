package dev.ferry.core.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A config's rotary-embedding parameters, read and checked once where the config enters: transformers 5 writes
 * {@code rope_parameters}, older configs {@code rope_theta} and {@code rope_scaling} (later ones win, as
 * transformers merges them). Every number is a finite positive JSON number ({@link ConfigNumbers#positiveReal}),
 * so {@code rope_theta} of {@code "abc"}, {@code 0} or {@code null}, or a llama3 {@code factor} of {@code "x"},
 * is a {@link ConfigException} naming the field instead of inverse frequencies of NaN or infinity.
 *
 * @param theta                {@code rope_theta} (default 10000)
 * @param type                 {@code rope_type} (or the older {@code type}); {@code default} when none
 * @param factor               llama3's {@code factor}; NaN for other types
 * @param lowFreqFactor        llama3's {@code low_freq_factor}; NaN for other types
 * @param highFreqFactor       llama3's {@code high_freq_factor} (above {@code lowFreqFactor}); NaN for other types
 * @param originalMaxPositions llama3's {@code original_max_position_embeddings}; NaN for other types
 */
public record RopeParameters(double theta, String type, double factor, double lowFreqFactor, double highFreqFactor,
                             double originalMaxPositions) {

    /** The parameters of {@code config} ({@code source} names it in messages). */
    public static RopeParameters of(JsonNode config, String source) {
        // every rope_theta written is checked, also one that a later object overrides: a bad value is a bad config
        new ConfigNumbers(config, source).positiveReal("rope_theta", 10000.0);
        ObjectNode merged = JsonNodeFactory.instance.objectNode();
        if (config.has("rope_theta")) {
            merged.set("rope_theta", config.get("rope_theta"));
        }
        for (String key : new String[] {"rope_scaling", "rope_parameters"}) {
            JsonNode part = config.get(key);
            if (part != null && part.isObject()) {
                new ConfigNumbers(part, source + " " + key).positiveReal("rope_theta", 10000.0);
                if (part.has("type") && !part.has("rope_type")) {
                    merged.set("rope_type", part.get("type"));
                }
                merged.setAll((ObjectNode) part);
            }
        }
        ConfigNumbers n = new ConfigNumbers(merged, source);
        double theta = n.positiveReal("rope_theta", 10000.0);
        JsonNode typeNode = merged.get("rope_type");
        String type = typeNode == null || typeNode.isNull() ? "default" : typeNode.asText();
        if (typeNode != null && !typeNode.isNull() && !typeNode.isTextual()) {
            throw new ConfigException("rope_type", source + ": rope_type must be a string, got " + typeNode);
        }
        if (!type.equals("llama3")) {
            if (merged.has("factor")) {
                n.positiveReal("factor");
            }
            return new RopeParameters(theta, type, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        }
        double factor = n.positiveReal("factor");
        double low = n.positiveReal("low_freq_factor");
        double high = n.positiveReal("high_freq_factor");
        double original = n.positiveReal("original_max_position_embeddings");
        if (!(high > low)) {
            throw new ConfigException("high_freq_factor", source + ": llama3 rope scaling needs high_freq_factor ("
                    + high + ") above low_freq_factor (" + low + "); equal ones divide by zero");
        }
        return new RopeParameters(theta, type, factor, low, high, original);
    }
}

package dev.ferry.pytorch.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.pytorch.nn.RopeTable;
import dev.ferry.pytorch.nn.RotaryEmbedding;
import java.util.List;

/**
 * Rotary parameters ({@code rope_parameters}, or the older {@code rope_theta} / {@code rope_scaling}, merged by
 * {@link ModelConfig#ropeParametersJson}) turned into frequency tables. The kinds transformers computes the same way at
 * every length are supported: {@code default}, {@code linear}, {@code llama3} and {@code longrope} (with its switch
 * to the long factors past {@code original_max_position_embeddings}). Any other kind is refused by name, never
 * approximated.
 */
public final class RopeConfig {

    public static final List<String> SUPPORTED = List.of("default", "linear", "llama3", "longrope");

    private RopeConfig() {
    }

    /**
     * The table of {@code params} (one layer kind's parameters, or the model's), for heads {@code headDim} wide.
     *
     * @param partialAllowed whether the family's attention rotates part of a head ({@code partial_rotary_factor});
     *                       other families refuse a factor below 1
     */
    public static RopeTable table(FamilyConfig c, JsonNode params, String where, int headDim, boolean partialAllowed) {
        String type = params.path("rope_type").asText("default");
        double theta = number(c, params, where, "rope_theta");
        double partial = params.has("partial_rotary_factor") ? number(c, params, where, "partial_rotary_factor")
                : c.positive("partial_rotary_factor", 1.0);
        if (partial != 1.0 && !partialAllowed) {
            throw new ConfigException("partial_rotary_factor", "config.json of model_type '" + c.modelType()
                    + "': partial_rotary_factor " + partial + " is not supported by this family (it rotates whole heads)");
        }
        int dim = (int) (headDim * partial);
        if (!(partial > 0 && partial <= 1) || dim < 2 || dim % 2 != 0) {
            throw new ConfigException("partial_rotary_factor", "config.json of model_type '" + c.modelType()
                    + "': partial_rotary_factor " + partial + " of head_dim " + headDim + " gives a rotary width of "
                    + dim + "; it must be even and positive");
        }
        float[] inv = RotaryEmbedding.defaultInvFreq(dim, theta);
        return switch (type) {
            case "default" -> RopeTable.of(inv, 1f);
            case "linear" -> {
                double factor = number(c, params, where, "factor");
                float[] out = new float[inv.length];
                for (int i = 0; i < inv.length; i++) {
                    out[i] = (float) (inv[i] / factor);
                }
                yield RopeTable.of(out, 1f);
            }
            case "llama3" -> RopeTable.of(RotaryEmbedding.llama3InvFreq(inv, number(c, params, where, "factor"),
                    number(c, params, where, "low_freq_factor"), number(c, params, where, "high_freq_factor"),
                    number(c, params, where, "original_max_position_embeddings")), 1f);
            case "longrope" -> longrope(c, params, where, dim, theta);
            default -> throw new IllegalArgumentException("rope_type '" + type + "' of model_type '" + c.modelType()
                    + "' is not supported; supported: " + String.join(", ", SUPPORTED));
        };
    }

    /**
     * LongRoPE: frequencies divided per pair by {@code short_factor} up to {@code original_max_position_embeddings}
     * and by {@code long_factor} beyond; cos and sin scaled by {@code attention_factor}, by default
     * {@code sqrt(1 + ln(factor) / ln(original))} where {@code factor} is {@code max_position_embeddings / original}
     * (the ratio Phi-3 configs imply) unless the parameters give it.
     */
    private static RopeTable longrope(FamilyConfig c, JsonNode params, String where, int dim, double theta) {
        int original = params.has("original_max_position_embeddings")
                ? (int) number(c, params, where, "original_max_position_embeddings")
                : c.requiredPositive("original_max_position_embeddings");
        double[] shortFactor = factors(c, params, where, "short_factor", dim / 2);
        double[] longFactor = factors(c, params, where, "long_factor", dim / 2);
        double factor = c.has("original_max_position_embeddings") || !params.has("factor")
                ? c.requiredPositive("max_position_embeddings") / (double) original
                : number(c, params, where, "factor");
        double attention = params.has("attention_factor") && !params.get("attention_factor").isNull()
                ? number(c, params, where, "attention_factor")
                : factor <= 1.0 ? 1.0 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
        float[] shortInv = new float[dim / 2];
        float[] longInv = new float[dim / 2];
        for (int i = 0; i < shortInv.length; i++) {
            double base = Math.pow(theta, (2.0 * i) / dim);
            shortInv[i] = (float) (1.0 / (shortFactor[i] * base));
            longInv[i] = (float) (1.0 / (longFactor[i] * base));
        }
        return new RopeTable(shortInv, longInv, original, (float) attention);
    }

    private static double[] factors(FamilyConfig c, JsonNode params, String where, String field, int n) {
        JsonNode a = params.get(field);
        if (a == null || !a.isArray() || a.size() != n) {
            throw new ConfigException(field, "config.json of model_type '" + c.modelType() + "': " + where + "."
                    + field + " must list " + n + " numbers (one per rotated pair), got " + a);
        }
        double[] out = new double[n];
        for (int i = 0; i < n; i++) {
            out[i] = positive(c, where + "." + field + "[" + i + "]", field, a.get(i));
        }
        return out;
    }

    private static double number(FamilyConfig c, JsonNode params, String where, String field) {
        JsonNode n = params.get(field);
        if (n == null || n.isNull()) {
            throw new ConfigException(field, "config.json of model_type '" + c.modelType() + "' lacks " + where + "."
                    + field + ", which rope_type '" + params.path("rope_type").asText("default") + "' needs");
        }
        return positive(c, where + "." + field, field, n);
    }

    /** Rope numbers divide or scale frequencies: a string, 0, a negative or an infinity would only become NaN. */
    private static double positive(FamilyConfig c, String path, String field, JsonNode n) {
        double v = n.isNumber() ? n.asDouble() : Double.NaN;
        if (!n.isNumber() || !Double.isFinite(v) || v <= 0) {
            throw new ConfigException(field, "config.json of model_type '" + c.modelType() + "': " + path
                    + " must be a finite number > 0, got " + n);
        }
        return v;
    }
}

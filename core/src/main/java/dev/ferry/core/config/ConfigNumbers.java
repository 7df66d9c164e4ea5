package dev.ferry.core.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigInteger;

/**
 * The integers of a Hugging Face {@code config.json}, read without wrapping: a value must be a JSON integer
 * (not a fraction, string or boolean) within {@code int} range, and the sizes Ferry builds from must be
 * positive. Every refusal is a {@link ConfigException} naming the field and the value as written.
 *
 * <p>This is the one place for the rule: the PyTorch model families, the ONNX path and the CLI read sizes
 * through it, so a value above 2<sup>32</sup> is refused rather than silently read as its low 32 bits.
 */
public final class ConfigNumbers {

    /**
     * The most decoder layers accepted: real models have at most a few hundred; a config asking for more is
     * refused up front instead of building (and running out of memory on) millions of modules.
     */
    public static final int MAX_LAYERS = 16_384;

    private static final BigInteger INT_MAX = BigInteger.valueOf(Integer.MAX_VALUE);

    private final JsonNode json;
    private final String source;

    /**
     * @param json   the parsed config (a JSON object)
     * @param source how messages name it, e.g. {@code config.json}
     */
    public ConfigNumbers(JsonNode json, String source) {
        this.json = json;
        this.source = source;
    }

    /** Whether {@code field} is present and not {@code null}. */
    public boolean has(String field) {
        JsonNode n = json.get(field);
        return n != null && !n.isNull();
    }

    /** {@code field} as an {@code int}: an integer in {@code int} range (any sign). */
    public int integer(String field) {
        JsonNode n = require(field);
        BigInteger v = integral(field, n);
        if (v.bitLength() >= 32) {
            throw new ConfigException(field, source + ": " + field + " is " + n.asText() + ", outside the range "
                    + "of a 32-bit integer (" + Integer.MIN_VALUE + ".." + Integer.MAX_VALUE + ")");
        }
        return v.intValue();
    }

    /** {@code field} as an {@code int}, or {@code fallback} when absent or {@code null}. */
    public int integer(String field, int fallback) {
        return has(field) ? integer(field) : fallback;
    }

    /** {@code field}, required, as a positive {@code int} (1..2<sup>31</sup>-1). */
    public int positive(String field) {
        JsonNode n = require(field);
        BigInteger v = integral(field, n);
        if (v.signum() <= 0) {
            throw new ConfigException(field, source + ": " + field + " must be a positive integer, got "
                    + n.asText());
        }
        if (v.compareTo(INT_MAX) > 0) {
            throw new ConfigException(field, source + ": " + field + " is " + n.asText() + ", more than the "
                    + "largest size Ferry accepts (" + Integer.MAX_VALUE + ")");
        }
        return v.intValue();
    }

    /** {@code field} as a positive {@code int}, or {@code fallback} when absent or {@code null}. */
    public int positive(String field, int fallback) {
        return has(field) ? positive(field) : fallback;
    }

    /** A layer count: positive and at most {@link #MAX_LAYERS}. */
    public int layers(String field) {
        int v = positive(field);
        if (v > MAX_LAYERS) {
            throw new ConfigException(field, source + ": " + field + " is " + v + ", more than the " + MAX_LAYERS
                    + " layers Ferry accepts (real models have at most a few hundred)");
        }
        return v;
    }

    /** Requires {@code value <= max} of a field already read, saying why the bound exists. */
    public int atMost(String field, int value, int max, String why) {
        if (value > max) {
            throw new ConfigException(field, source + ": " + field + " is " + value + ", more than " + max + " ("
                    + why + ")");
        }
        return value;
    }

    /**
     * Requires {@code dividend % divisor == 0}, as a family's reshapes do, e.g.
     * {@code hidden_size % num_attention_heads}.
     */
    public void requireDivisible(String dividendField, long dividend, String divisorField, long divisor) {
        if (divisor <= 0 || dividend % divisor != 0) {
            throw new ConfigException(dividendField, source + ": " + dividendField + " (" + dividend
                    + ") must be divisible by " + divisorField + " (" + divisor + ")");
        }
    }

    /**
     * {@code field} as a finite, positive real number (an epsilon, {@code rope_theta}, a rope factor), or
     * {@code fallback} when the key is absent. Present, it must be a JSON number (an integer or a fraction): a
     * string, {@code null}, a boolean, zero, a negative value or one too large for a double is refused, naming the
     * field, so that a bad value never turns into NaN deep inside a forward.
     */
    public double positiveReal(String field, double fallback) {
        if (!json.has(field)) {
            return fallback;
        }
        return positiveReal(field);
    }

    /** {@code field}, required, as a finite, positive real number (see {@link #positiveReal(String, double)}). */
    public double positiveReal(String field) {
        JsonNode n = json.get(field);
        if (n == null) {
            throw new ConfigException(field, source + " lacks '" + field + "'");
        }
        if (!n.isNumber()) {
            throw new ConfigException(field, source + ": " + field + " must be a number, got "
                    + (n.isNull() ? "null" : n.toString()));
        }
        double v = n.doubleValue();
        if (!Double.isFinite(v)) {
            throw new ConfigException(field, source + ": " + field + " is " + n.asText()
                    + ", too large for a double");
        }
        if (!(v > 0)) {
            throw new ConfigException(field, source + ": " + field + " must be a positive number, got "
                    + n.asText());
        }
        return v;
    }

    /** How messages name the config. */
    public String source() {
        return source;
    }

    private JsonNode require(String field) {
        if (!has(field)) {
            throw new ConfigException(field, source + " lacks '" + field + "'");
        }
        return json.get(field);
    }

    private BigInteger integral(String field, JsonNode n) {
        if (n.isIntegralNumber()) {
            return n.bigIntegerValue();
        }
        throw new ConfigException(field, source + ": " + field + " must be an integer, got " + n);
    }
}

package dev.ferry.core.config;

/**
 * A number of a model's {@code config.json} that Ferry refuses: not an integer, out of range, not positive,
 * not divisible as the model family requires, or implying an absurd model. The message names the field and
 * its value; {@link #field()} names the field for callers.
 */
public final class ConfigException extends IllegalArgumentException {

    private final String field;

    public ConfigException(String field, String message) {
        super(message);
        this.field = field;
    }

    /** The config field at fault ({@code num_attention_heads}), or the first of several. */
    public String field() {
        return field;
    }
}

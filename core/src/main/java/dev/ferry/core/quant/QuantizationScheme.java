package dev.ferry.core.quant;

import java.util.Arrays;
import java.util.Locale;

/**
 * How weights are quantized. One scheme today: {@link #INT8}, weight-only int8 with one symmetric scale per output
 * channel (row of a Linear weight), the layout compressed-tensors calls {@code int-quantized} with a {@code channel}
 * strategy: {@code X.weight} int8 {@code [out, in]} and {@code X.weight_scale} {@code [out, 1]}, so that
 * {@code W ≈ weight × weight_scale}. Activations stay in the compute dtype (W8A16).
 */
public enum QuantizationScheme {
    INT8("int8");

    private final String id;

    QuantizationScheme(String id) {
        this.id = id;
    }

    /** The name on the command line and in the builder ({@code int8}). */
    public String id() {
        return id;
    }

    /** The scheme named {@code name} ({@code int8}); the message names the known ones. */
    public static QuantizationScheme parse(String name) {
        if (name != null) {
            String n = name.strip().toLowerCase(Locale.ROOT);
            for (QuantizationScheme s : values()) {
                if (s.id.equals(n)) {
                    return s;
                }
            }
        }
        throw new IllegalArgumentException("unknown quantization scheme '" + name + "'; known: "
                + Arrays.stream(values()).map(QuantizationScheme::id).toList()
                + " (int8: weight-only, one symmetric scale per output channel)");
    }

    @Override
    public String toString() {
        return id;
    }
}

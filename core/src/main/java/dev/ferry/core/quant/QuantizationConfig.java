package dev.ferry.core.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Optional;

/**
 * The {@code quantization_config} entry of a quantized checkpoint's {@code config.json}, in compressed-tensors' words
 * (what llm-compressor writes), so the folder says what it holds in a vocabulary other tools know:
 *
 * <pre>{@code
 * "quantization_config": {
 *   "quant_method": "compressed-tensors", "format": "int-quantized", "quantization_status": "compressed",
 *   "config_groups": {"group_0": {"targets": ["Linear"], "input_activations": null, "output_activations": null,
 *     "weights": {"num_bits": 8, "type": "int", "symmetric": true, "strategy": "channel", "dynamic": false}}},
 *   "ignore": ["lm_head"],
 *   "ferry_scheme": "int8"
 * }
 * }</pre>
 * Ferry reads its own entry ({@code ferry_scheme}) and any compressed-tensors entry of that exact shape (8-bit
 * symmetric int weights per channel, no activation quantization, {@code int-quantized}); anything else is refused
 * by name rather than run wrong.
 */
public final class QuantizationConfig {

    public static final String KEY = "quantization_config";
    static final String FERRY_SCHEME = "ferry_scheme";

    private QuantizationConfig() {
    }

    /**
     * The scheme {@code config} (a whole config.json) declares; empty when it has no {@code quantization_config}.
     *
     * @throws IllegalArgumentException naming the field when the entry is one Ferry does not run
     */
    public static Optional<QuantizationScheme> of(JsonNode config) {
        JsonNode q = config == null ? null : config.get(KEY);
        if (q == null || q.isNull()) {
            return Optional.empty();
        }
        if (!q.isObject()) {
            throw new IllegalArgumentException("config.json: " + KEY + " must be an object, got " + q);
        }
        if (q.hasNonNull(FERRY_SCHEME)) {
            try {
                return Optional.of(QuantizationScheme.parse(q.get(FERRY_SCHEME).asText()));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("config.json: " + KEY + "." + FERRY_SCHEME + ": " + e.getMessage(), e);
            }
        }
        String method = q.path("quant_method").asText("");
        String format = q.path("format").asText("");
        if (!method.equals("compressed-tensors") || !format.equals("int-quantized")) {
            throw new IllegalArgumentException("config.json: " + KEY + " with quant_method '" + method + "' and format '"
                    + format + "' is not supported; Ferry runs int8 weight-only checkpoints (compressed-tensors "
                    + "'int-quantized', 8-bit symmetric per-channel weights), such as 'ferry quantize' writes");
        }
        JsonNode groups = q.path("config_groups");
        if (!groups.isObject() || groups.size() != 1) {
            throw new IllegalArgumentException("config.json: " + KEY + ".config_groups: expected one group, got "
                    + groups);
        }
        JsonNode g = groups.elements().next();
        JsonNode w = g.path("weights");
        boolean int8PerChannel = w.path("num_bits").asInt() == 8 && w.path("type").asText().equals("int")
                && w.path("symmetric").asBoolean(false) && w.path("strategy").asText().equals("channel");
        boolean weightOnly = g.path("input_activations").isMissingNode() || g.path("input_activations").isNull();
        if (!int8PerChannel || !weightOnly) {
            throw new IllegalArgumentException("config.json: " + KEY + ".config_groups: " + g + " is not int8 "
                    + "weight-only (num_bits 8, type int, symmetric, strategy channel, input_activations null), the "
                    + "one compressed-tensors scheme Ferry runs");
        }
        return Optional.of(QuantizationScheme.INT8);
    }

    /** The entry for {@code scheme}, listing the Linear modules left unquantized in {@code ignore}. */
    public static ObjectNode entry(QuantizationScheme scheme, List<String> ignore) {
        JsonNodeFactory f = JsonNodeFactory.instance;
        ObjectNode q = f.objectNode();
        q.put("quant_method", "compressed-tensors");
        q.put("format", "int-quantized");
        q.put("quantization_status", "compressed");
        ObjectNode group = q.putObject("config_groups").putObject("group_0");
        group.putArray("targets").add(QuantizedLinears.LINEAR);
        ObjectNode w = group.putObject("weights");
        w.put("num_bits", 8);
        w.put("type", "int");
        w.put("symmetric", true);
        w.put("strategy", "channel");
        w.put("dynamic", false);
        group.putNull("input_activations");
        group.putNull("output_activations");
        ignore.forEach(q.putArray("ignore")::add);
        q.put(FERRY_SCHEME, scheme.id());
        return q;
    }
}

package dev.ferry.pytorch.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;
import dev.ferry.pytorch.nn.RotaryEmbedding;
import java.util.Map;

/** The Llama family: Llama, Mistral and Qwen2 (bias on q/k/v), which differ only in class names and biases. */
public final class LlamaFamily {

    /** transformers class-name prefix of each supported {@code model_type}. */
    static final Map<String, String> PREFIXES = Map.of("llama", "Llama", "mistral", "Mistral", "qwen2", "Qwen2");

    /** Sizes and options shared by every decoder layer. */
    public record Dims(int hidden, int intermediate, int heads, int kvHeads, int headDim, double eps,
                       boolean qkvBias, boolean oBias, boolean mlpBias, String act) {
    }

    private LlamaFamily() {
    }

    public static LlamaForCausalLM build(ModelConfig c, DjlBackend backend, DType dtype) {
        String type = c.modelType();
        String prefix = PREFIXES.get(type);
        if (prefix == null) {
            throw new IllegalArgumentException("model_type '" + type + "' is not of the Llama family " + PREFIXES.keySet());
        }
        int hidden = c.integer("hidden_size");
        int heads = c.integer("num_attention_heads");
        int kvHeads = c.integer("num_key_value_heads", heads);
        int headDim = c.integer("head_dim", hidden / heads);
        boolean qwen = type.equals("qwen2");
        boolean attentionBias = c.bool("attention_bias", false);
        Dims d = new Dims(hidden, c.integer("intermediate_size"), heads, kvHeads, headDim,
                c.number("rms_norm_eps", 1e-6), qwen || attentionBias, !qwen && attentionBias,
                c.bool("mlp_bias", false), c.string("hidden_act", "silu"));
        JsonNode rope = c.ropeParameters();
        float[] inv = RotaryEmbedding.defaultInvFreq(headDim, rope.get("rope_theta").asDouble());
        String ropeType = rope.get("rope_type").asText();
        switch (ropeType) {
            case "default" -> { }
            case "llama3" -> inv = RotaryEmbedding.llama3InvFreq(inv, rope.get("factor").asDouble(),
                    rope.get("low_freq_factor").asDouble(), rope.get("high_freq_factor").asDouble(),
                    rope.get("original_max_position_embeddings").asDouble());
            default -> throw new IllegalArgumentException("rope_type '" + ropeType + "' of model_type '" + type
                    + "' is not supported; supported: default, llama3");
        }
        return new LlamaForCausalLM(prefix, backend, c, d, c.integer("vocab_size"), c.integer("num_hidden_layers"),
                inv, 1f, c.bool("tie_word_embeddings", false), dtype);
    }
}

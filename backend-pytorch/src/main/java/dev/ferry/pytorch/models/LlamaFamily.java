package dev.ferry.pytorch.models;

import com.fasterxml.jackson.databind.JsonNode;
import dev.ferry.core.config.ConfigException;
import dev.ferry.core.config.ConfigNumbers;
import dev.ferry.core.config.DecoderShape;
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

    /** The widest attention head accepted (real ones are 64 to 256): the rotary table is allocated from it. */
    static final int MAX_HEAD_DIM = 1 << 16;

    private LlamaFamily() {
    }

    public static LlamaForCausalLM build(ModelConfig c, DjlBackend backend, DType dtype) {
        String type = c.modelType();
        String prefix = PREFIXES.get(type);
        if (prefix == null) {
            throw new IllegalArgumentException("model_type '" + type + "' is not of the Llama family " + PREFIXES.keySet());
        }
        ConfigNumbers n = c.numbers();
        int hidden = n.positive("hidden_size");
        int heads = n.positive("num_attention_heads");
        int kvHeads = n.positive("num_key_value_heads", heads);
        n.requireDivisible("num_attention_heads", heads, "num_key_value_heads", kvHeads);
        int headDim;
        if (n.has("head_dim")) {
            headDim = n.atMost("head_dim", n.positive("head_dim"), MAX_HEAD_DIM, "heads of real models are at most "
                    + "a few hundred wide");
        } else {
            n.requireDivisible("hidden_size", hidden, "num_attention_heads", heads);
            headDim = n.atMost("hidden_size / num_attention_heads", hidden / heads, MAX_HEAD_DIM,
                    "heads of real models are at most a few hundred wide");
        }
        if (headDim % 2 != 0) {
            throw new ConfigException("head_dim", "config.json: the head size (head_dim, or hidden_size / "
                    + "num_attention_heads) is " + headDim + "; rotary embeddings need it even");
        }
        int intermediate = n.positive("intermediate_size");
        int vocab = n.positive("vocab_size");
        int layers = n.layers("num_hidden_layers");
        n.positive("max_position_embeddings", Integer.MAX_VALUE);
        boolean tied = c.bool("tie_word_embeddings", false);
        new DecoderShape(vocab, hidden, layers, heads, kvHeads, headDim, intermediate, 3, 0, tied).requireSane(n);
        boolean qwen = type.equals("qwen2");
        boolean attentionBias = c.bool("attention_bias", false);
        Dims d = new Dims(hidden, intermediate, heads, kvHeads, headDim,
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
        return new LlamaForCausalLM(prefix, backend, c, d, vocab, layers, inv, 1f, tied, dtype);
    }
}

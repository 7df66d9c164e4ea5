package dev.ferry.pytorch.models;

import dev.ferry.core.config.DecoderShape;
import dev.ferry.core.config.RopeParameters;
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
        // every size checked at the door by core's one rule: positive, no wrapping, divisible, sane in total
        DecoderShape shape = c.shape();
        int headDim = shape.headDim();
        boolean qwen = type.equals("qwen2");
        boolean attentionBias = c.bool("attention_bias", false);
        Dims d = new Dims(shape.hiddenSize(), shape.intermediateSize(), shape.heads(), shape.kvHeads(), headDim,
                c.numbers().positiveReal("rms_norm_eps", 1e-6), qwen || attentionBias, !qwen && attentionBias,
                c.bool("mlp_bias", false), c.string("hidden_act", "silu"));
        RopeParameters rope = RopeParameters.of(c.json(), "config.json"); // typed and range-checked
        float[] inv = RotaryEmbedding.defaultInvFreq(headDim, rope.theta());
        String ropeType = rope.type();
        switch (ropeType) {
            case "default" -> { }
            case "llama3" -> inv = RotaryEmbedding.llama3InvFreq(inv, rope.factor(), rope.lowFreqFactor(),
                    rope.highFreqFactor(), rope.originalMaxPositions());
            default -> throw new IllegalArgumentException("rope_type '" + ropeType + "' of model_type '" + type
                    + "' is not supported; supported: default, llama3");
        }
        return new LlamaForCausalLM(prefix, backend, c, d, shape.vocabSize(), shape.layers(), inv, 1f,
                shape.tiedEmbeddings(), dtype);
    }
}

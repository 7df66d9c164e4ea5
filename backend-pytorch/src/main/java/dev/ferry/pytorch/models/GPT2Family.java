package dev.ferry.pytorch.models;

import dev.ferry.core.config.DecoderShape;
import dev.ferry.core.tensor.DType;
import dev.ferry.pytorch.DjlBackend;

/**
 * GPT-2 ({@code model_type: gpt2}): its own blocks (fused {@code c_attn} in {@code Conv1D}s, LayerNorm, learned
 * positions), over the shared trunk skeleton ({@link DecoderTrunk}) and head ({@link CausalLM}, tied by default).
 */
public final class GPT2Family implements Family {

    public static final GPT2Family GPT2 = new GPT2Family();

    /** Sizes and options shared by every block. */
    public record Dims(int embed, int heads, int inner, double eps, String activation, boolean scaleWeights,
                       boolean scaleByLayer, double attnPdrop, double residPdrop) {
    }

    private GPT2Family() {
    }

    @Override
    public String modelType() {
        return "gpt2";
    }

    @Override
    public CausalLM build(ModelConfig c, DjlBackend backend, DType dtype) {
        if (!c.modelType().equals("gpt2")) {
            throw new IllegalArgumentException("model_type '" + c.modelType() + "' is not gpt2");
        }
        if (c.bool("add_cross_attention", false)) {
            throw new IllegalArgumentException("gpt2 with add_cross_attention is not supported");
        }
        if (c.bool("reorder_and_upcast_attn", false)) {
            throw new IllegalArgumentException("gpt2 with reorder_and_upcast_attn is not supported");
        }
        // every size checked at the door by core's one rule: positive, no wrapping, divisible, sane in total
        DecoderShape shape = c.shape();
        Dims d = new Dims(shape.hiddenSize(), shape.heads(), shape.intermediateSize(),
                c.numbers().positiveReal("layer_norm_epsilon", 1e-5), c.string("activation_function", "gelu_new"),
                c.bool("scale_attn_weights", true), c.bool("scale_attn_by_inverse_layer_idx", false),
                c.number("attn_pdrop", 0.1), c.number("resid_pdrop", 0.1));
        GPT2Model trunk = new GPT2Model(backend, d, shape.vocabSize(), shape.maxPositions(), shape.layers(),
                c.number("embd_pdrop", 0.1), dtype);
        return new CausalLM("GPT2LMHeadModel", backend, c, "transformer", trunk, d.embed(), shape.vocabSize(),
                shape.maxPositions(), shape.tiedEmbeddings(), 0f, 0, dtype);
    }
}
